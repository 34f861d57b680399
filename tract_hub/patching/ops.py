"""How TrAct rides on autograd: two PyTorch custom operators for ``torch.compile`` (also with ``fullgraph=True``)
and ``torch.fx``, and their eager twin, an ``autograd.Function`` that runs the same code without the operators'
dispatch cost (:func:`route` picks one).

* ``tract_hub::route_weight(weight, x, row_mask, layer, geometry)`` passes the weight a layer's Linear/convolution
  call uses (a copy: operators may not return their input) and returns two more tensors for the backward: the
  call's token (its forward id, on the CPU) and, under ``torch.distributed``, its covariance summed over the ranks
  (:meth:`~tract_hub.patching.gradient.GradientState.forward`);
* its backward, ``tract_hub::weight_gradient(grad, x, row_mask, token, reduced, layer, geometry)``, turns the
  ordinary weight gradient into TrAct's (:meth:`~tract_hub.patching.gradient.GradientState.weight_gradient`).

Both are opaque to the compiler (their output shapes depend only on the weight and the geometry) and run their
Python at run time, looking the layer up by its integer handle; on the meta device too, where they prove
themselves free of host-device syncs. They are tagged ``cudagraph_unsafe``: CUDA graphs would replay their kernels
without their bookkeeping, so Inductor keeps them out of captured graphs.

With ``create_graph=True`` (gradient penalties), TrAct's gradient is differentiated as the linear map of ``G`` it
is: ``G @ inverse(x^T x / N + lam I)`` with the covariance held constant, as an optimizer's preconditioner is.

Example (torch.fx traces through timm's StdConv2d, which is not a torch.nn leaf module, and records the operator):
    >>> import torch, tract_hub
    >>> from timm.layers import StdConv2d
    >>> model = tract_hub.patch(torch.nn.Sequential(StdConv2d(3, 4, 3)), target="0")
    >>> graph = torch.fx.symbolic_trace(model)
    >>> "tract_hub.route_weight" in graph.code
    True
"""

from __future__ import annotations

import contextlib
import functools

import torch

from .. import _torch_internals as internals
from ..core.handles import LayerHandles
from ..engine.geometry import LayerGeometry
from ..engine.solve import solve_with_factor
from .distributed import distributed
from .gradient import reduced_size

#: Every installed layer (``TrActForward``) by handle.
LAYERS: LayerHandles = LayerHandles()


@functools.lru_cache(maxsize=256)
def _geometry(values: tuple[int, ...]) -> LayerGeometry:
    return LayerGeometry.from_ints(values)


def _route_weight(
    weight: torch.Tensor, x: torch.Tensor, row_mask: torch.Tensor | None, layer: int, geometry: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    installed = LAYERS.get(layer)
    return installed.state.forward(installed, weight, x, row_mask, _geometry(tuple(geometry)))


def _weight_gradient(
    grad: torch.Tensor,
    x: torch.Tensor,
    row_mask: torch.Tensor | None,
    token: torch.Tensor,
    reduced: torch.Tensor,
    layer: int,
    geometry: list[int],
) -> torch.Tensor:
    installed = LAYERS.get(layer)
    return installed.state.weight_gradient(installed, grad, x, row_mask, token, reduced, _geometry(tuple(geometry)))


@torch.library.custom_op("tract_hub::route_weight", mutates_args=(), tags=internals.CUDAGRAPH_UNSAFE_TAGS)
def route_weight(
    weight: torch.Tensor, x: torch.Tensor, row_mask: torch.Tensor | None, layer: int, geometry: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The weight, unchanged (copied), the call's token and its rank-summed covariance; its backward applies
    TrAct."""
    return _route_weight(weight, x, row_mask, layer, geometry)


@route_weight.register_fake
def _route_weight_fake(
    weight: torch.Tensor, x: torch.Tensor, row_mask: torch.Tensor | None, layer: int, geometry: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if internals.is_real_meta(x):  # releases where the fake implementation also serves real meta tensors
        return _route_weight(weight, x, row_mask, layer, geometry)
    size = reduced_size(_geometry(tuple(geometry))) if distributed() else 0
    token = torch.empty(2, dtype=torch.int64, device="cpu")
    return torch.empty_like(weight), token, x.new_empty(size, dtype=torch.float64)


@torch.library.custom_op("tract_hub::weight_gradient", mutates_args=(), tags=internals.CUDAGRAPH_UNSAFE_TAGS)
def weight_gradient(
    grad: torch.Tensor,
    x: torch.Tensor,
    row_mask: torch.Tensor | None,
    token: torch.Tensor,
    reduced: torch.Tensor,
    layer: int,
    geometry: list[int],
) -> torch.Tensor:
    """TrAct's gradient for the weight that the layer's call used, given the ordinary one."""
    return _weight_gradient(grad, x, row_mask, token, reduced, layer, geometry)


@weight_gradient.register_fake
def _weight_gradient_fake(
    grad: torch.Tensor,
    x: torch.Tensor,
    row_mask: torch.Tensor | None,
    token: torch.Tensor,
    reduced: torch.Tensor,
    layer: int,
    geometry: list[int],
) -> torch.Tensor:
    if internals.is_real_meta(x):
        return _weight_gradient(grad, x, row_mask, token, reduced, layer, geometry)
    return torch.empty_like(grad)


def _setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    _, x, row_mask, layer, geometry = inputs
    _, token, reduced = output
    ctx.save_for_backward(x, row_mask, token, reduced)
    ctx.layer, ctx.geometry = layer, geometry
    ctx.mark_non_differentiable(token, reduced)


def _differentiable(value: torch.Tensor, grad: torch.Tensor, layer: int) -> torch.Tensor:
    """With ``create_graph=True``: ``value``, plus the linear map of ``G`` it came from, to differentiate. The
    state's factor is released either way (an ``n x n`` buffer per group not to keep between steps)."""
    state = LAYERS.get(layer).state
    factor, state.factor = state.factor, None
    if not torch.is_grad_enabled():
        return value
    linear = solve_with_factor(grad, factor)
    return value.detach() + (linear - linear.detach())


def _backward(ctx, grad, _token_grad, _reduced_grad):  # type: ignore[no-untyped-def]
    if not ctx.needs_input_grad[0]:
        return None, None, None, None, None
    x, row_mask, token, reduced = ctx.saved_tensors
    with torch.no_grad():
        value = weight_gradient(grad, x, row_mask, token, reduced, ctx.layer, ctx.geometry)
    return _differentiable(value, grad, ctx.layer), None, None, None, None


class EagerRoute(torch.autograd.Function):
    """The eager twin of ``route_weight`` and its backward: the same state methods, called directly."""

    @staticmethod
    def forward(ctx, weight, x, row_mask, layer, geometry):  # type: ignore[no-untyped-def]
        installed = LAYERS.get(layer)
        routed, token, reduced = installed.state.forward(installed, weight, x, row_mask, geometry)
        ctx.save_for_backward(x, row_mask)
        ctx.token, ctx.reduced, ctx.layer, ctx.geometry = token, reduced, layer, geometry
        return routed

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        x, row_mask = ctx.saved_tensors
        installed = LAYERS.get(ctx.layer)
        with torch.no_grad():
            value = installed.state.weight_gradient(installed, grad, x, row_mask, ctx.token, ctx.reduced, ctx.geometry)
        return _differentiable(value, grad, ctx.layer), None, None, None, None


def route(
    weight: torch.Tensor, x: torch.Tensor, row_mask: torch.Tensor | None, layer: int, geometry: LayerGeometry
) -> torch.Tensor:
    """The weight a patched layer's call uses, carrying TrAct into autograd: the custom operator while
    ``torch.compile`` or ``torch.fx`` traces, its eager twin otherwise."""
    if torch.compiler.is_compiling():
        routed, _, _ = route_weight(weight, x, row_mask, layer, geometry.as_ints())
        return routed
    if not isinstance(weight, torch.Tensor):  # torch.fx: the graph calls the operator by name, which TorchScript
        routed, _, _ = torch.ops.tract_hub.route_weight(weight, x, row_mask, layer, geometry.as_ints())  # compiles
        return routed
    return EagerRoute.apply(weight, x, row_mask, layer, geometry)


route_weight.register_autograd(_backward, setup_context=_setup_context)
# Meta tensors (not the compiler's fake ones) run the real code: nothing in it may read a tensor on the host, and
# on the meta device any attempt raises, which is how the tests prove the backward free of host-device syncs.
# Releases before 2.10 refuse a meta kernel beside a fake one; there the fake implementation runs the real code.
for _op, _real in ((route_weight, _route_weight), (weight_gradient, _weight_gradient)):
    with contextlib.suppress(RuntimeError):
        _op.register_kernel("meta")(_real)

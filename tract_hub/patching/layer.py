"""TrAct installed on one layer: an instance-level ``forward`` that leaves the module's class and state alone.

:class:`TrActForward` is stored as ``module.forward`` (an instance attribute shadows the class method), so the
module keeps its class, parameters, buffers, hooks and ``state_dict``. It runs the layer's own forward under a
:class:`~tract_hub.patching.interception.LayerOpMode` that passes the weight the convolution actually uses
through :class:`TrActWeight`, an identity whose backward turns the ordinary weight gradient ``G`` into the TrAct
gradient. The convolution's own backward still computes ``G``, the input gradient and the bias gradient
(PyTorch's fused kernels, bit-identical to an unpatched layer).

Two modes:
    * per-backward (default, the paper's behaviour): each backward of each call solves with the covariance of
      that call's input;
    * exact (``exact=True``): backward only accumulates the covariance (and, for layers that transform their
      weight, the gradient of the used weight); :func:`tract_hub.finalize` sums them over micro-batches and
      ranks and solves once per optimizer step, so the update does not depend on how the batch was split.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..engine import covariance_for_solve, tract_gradient
from ..engine.geometry import LayerGeometry
from ..errors import UnsupportedLayerError
from .interception import LayerCall, LayerOpMode

logger = logging.getLogger(__name__)


@dataclass
class PendingStep:
    """What exact mode has accumulated since the last ``finalize``: covariance sum, row count, and the summed
    gradient of the used weight for layers whose weight is transformed before the convolution."""

    geometry: LayerGeometry
    cov: torch.Tensor
    rows: float = 0.0
    used_weight_grad: torch.Tensor | None = None
    backward_calls: int = 0

    def add(self, cov: torch.Tensor, rows: int, used_weight_grad: torch.Tensor | None) -> None:
        if cov.dtype != self.cov.dtype:  # a micro-batch needed float64: keep the whole sum in float64
            dtype = torch.promote_types(cov.dtype, self.cov.dtype)
            self.cov, cov = self.cov.to(dtype), cov.to(dtype)
        self.cov += cov
        self.rows += rows
        self.backward_calls += 1
        if used_weight_grad is not None:
            grad = used_weight_grad.to(self.cov.dtype)
            self.used_weight_grad = grad if self.used_weight_grad is None else self.used_weight_grad + grad


#: Exact-mode layers holding an unfinalized step (checked before every optimizer step).
PENDING_LAYERS: weakref.WeakSet[TrActForward] = weakref.WeakSet()


@dataclass(eq=False)
class TrActForward:
    """The forward installed on a patched layer. Holds the TrAct settings of that layer.

    Attributes:
        module: the patched layer (a reference cycle through ``module.forward``; pickling and deepcopy keep it).
        lam: the regularization lambda.
        exact: accumulate and solve in :func:`tract_hub.finalize` instead of in each backward.
        found_by: which rule located the layer (``"target"`` when named by the user).
        unfrozen: the weight had ``requires_grad=False`` and the patch turned it on (``unpatch`` turns it off).
        previous_forward: an instance-level forward that was there before (e.g. from another library), which
            is called in place of the class forward and restored by ``unpatch``.
    """

    module: nn.Module
    lam: float
    exact: bool = False
    found_by: str = "target"
    unfrozen: bool = False
    previous_forward: Any = None
    pending: PendingStep | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["pending"] = None  # accumulators of an unfinished step are not part of the model
        return state

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _run_patched_forward(self, args, kwargs)

    # -- called from the forward -------------------------------------------------------------------------
    def layer_forward(self) -> Any:
        if self.previous_forward is not None:
            return self.previous_forward
        return type(self.module).forward.__get__(self.module)

    def route_call(self, call: LayerCall) -> Any:
        weight = call.weight
        if not (torch.is_grad_enabled() and weight.requires_grad):
            return call.run()
        used_is_parameter = weight is getattr(self.module, "weight", None)
        routed = TrActWeight.apply(weight, call.input.detach(), self, call.geometry(), used_is_parameter)
        return call.run(weight=routed)

    # -- called from the backward ------------------------------------------------------------------------
    def weight_gradient(
        self, grad: torch.Tensor, x: torch.Tensor, geometry: LayerGeometry, used_is_parameter: bool
    ) -> torch.Tensor:
        if not self.exact:
            return tract_gradient(grad, x, geometry, self.lam)
        cov, rows = covariance_for_solve(x, geometry, self.lam)
        if self.pending is None:
            self.pending = PendingStep(geometry, torch.zeros_like(cov))
            PENDING_LAYERS.add(self)
        elif (self.pending.geometry.features, self.pending.geometry.groups) != (geometry.features, geometry.groups):
            raise UnsupportedLayerError(
                f"{type(self.module).__name__} was called with two row layouts in one step "
                f"({self.pending.geometry} and {geometry}); exact mode needs one layout per layer"
            )
        self.pending.add(cov, rows, None if used_is_parameter else grad)
        # A weight used as it is gets TrAct on its accumulated .grad in finalize; a transformed weight
        # (weight standardization) gets TrAct on the used weight's summed gradient, then the transform's backward.
        return grad if used_is_parameter else torch.zeros_like(grad)


class TrActWeight(torch.autograd.Function):
    """Identity on the weight a Linear/convolution call uses; its backward applies TrAct to that weight's
    gradient (per-backward mode) or records what exact mode needs."""

    @staticmethod
    def forward(ctx, weight, x, layer, geometry, used_is_parameter):  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.layer, ctx.geometry, ctx.used_is_parameter = layer, geometry, used_is_parameter
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return ctx.layer.weight_gradient(grad, x, ctx.geometry, ctx.used_is_parameter), None, None, None, None


def _eager_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compiler.disable(fn)``, created at the first call so that importing tract_hub does not import
    torch._dynamo (seconds of import time)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        disabled = getattr(fn, "_tract_hub_eager", None)
        if disabled is None:
            disabled = torch.compiler.disable(fn)
            fn._tract_hub_eager = disabled  # type: ignore[attr-defined]
        return disabled(*args, **kwargs)

    return run


@_eager_only
def _run_patched_forward(layer: TrActForward, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run the layer's forward with its Linear/convolution call routed through TrAct.

    Kept out of ``torch.compile`` graphs on purpose: the first layer runs eagerly (one graph break at the
    model's entry) and the rest of the model compiles as usual.
    """
    forward = layer.layer_forward()
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    mode = LayerOpMode(layer.route_call)
    with mode:
        output = forward(*args, **kwargs)
    if mode.calls != 1:
        raise UnsupportedLayerError(
            f"TrAct on {type(layer.module).__name__}: its forward made {mode.calls} Linear/convolution calls "
            "(F.linear, F.conv1d/2d/3d); TrAct needs exactly one to know which weight it acts on. "
            "Patch the layer that makes the call instead."
        )
    return output


def probe_input(module: nn.Module) -> torch.Tensor:
    """The smallest input a Linear/convolution layer accepts, on its weight's device and dtype."""
    weight = module.weight
    if isinstance(module, nn.Linear):
        return torch.zeros(1, module.in_features, dtype=weight.dtype, device=weight.device)
    kernel = module.kernel_size
    dilation = module.dilation
    padding = module.padding if isinstance(module.padding, tuple) else (0,) * len(kernel)
    size = [d * (k - 1) + 1 + 2 * p + 1 for k, d, p in zip(kernel, dilation, padding, strict=True)]
    return torch.zeros(1, module.in_channels, *size, dtype=weight.dtype, device=weight.device)


def capture_used_weight(module: nn.Module) -> torch.Tensor:
    """Re-run a layer's weight computation (e.g. weight standardization) with autograd, without the convolution.

    Returns the tensor the layer passes as ``weight`` to its Linear/convolution call, connected to the layer's
    parameters, so that a gradient for it can be carried back to them with ``torch.autograd.grad``.
    """

    class _Captured(Exception):
        pass

    captured: list[torch.Tensor] = []

    def stop(call: LayerCall) -> Any:
        captured.append(call.weight)
        raise _Captured

    forward = type(module).forward.__get__(module)
    with torch.enable_grad():
        try:
            with LayerOpMode(stop):
                forward(probe_input(module))
        except _Captured:
            pass
    if not captured:
        raise UnsupportedLayerError(f"{type(module).__name__}: its forward made no Linear/convolution call")
    return captured[0]

"""TrAct as two PyTorch custom operators, so that ``torch.compile`` (also with ``fullgraph=True``), ``torch.fx``
and eager mode all run the same code.

* ``tract_hub::route_weight(weight, x, layer, geometry)`` passes the weight a layer's Linear/convolution call uses
  (a copy: operators may not return their input) and records what the layer's backward needs;
* its backward, ``tract_hub::weight_gradient(grad, x, layer, geometry)``, turns the ordinary weight gradient into
  TrAct's (:meth:`~tract_hub.patching.gradient.GradientState.weight_gradient`).

Both are opaque to the compiler (their shapes are those of the weight) and run their Python at run time, looking the
layer up by its integer handle; on the meta device too, where they prove themselves free of host-device syncs.
They are tagged ``cudagraph_unsafe``: CUDA graphs would replay their kernels without their bookkeeping, so
Inductor keeps them out of captured graphs.

Example (torch.fx traces through timm's StdConv2d, which is not a torch.nn leaf module, and records the operator):
    >>> import torch, tract_hub
    >>> from timm.layers import StdConv2d
    >>> model = tract_hub.patch(torch.nn.Sequential(StdConv2d(3, 4, 3)), target="0")
    >>> graph = torch.fx.symbolic_trace(model)
    >>> "tract_hub.route_weight" in graph.code
    True
"""

from __future__ import annotations

import torch

from ..core.handles import LayerHandles
from ..engine.geometry import LayerGeometry
from .distributed import ddp_forward

#: Every installed layer (``TrActForward``) by handle.
LAYERS: LayerHandles = LayerHandles()

_TAGS = (torch.Tag.cudagraph_unsafe,) if hasattr(torch.Tag, "cudagraph_unsafe") else ()


def _route_weight(weight: torch.Tensor, x: torch.Tensor, layer: int, geometry: list[int]) -> torch.Tensor:
    LAYERS.get(layer).state.ddp = ddp_forward()
    return weight.clone()


def _weight_gradient(grad: torch.Tensor, x: torch.Tensor, layer: int, geometry: list[int]) -> torch.Tensor:
    installed = LAYERS.get(layer)
    return installed.state.weight_gradient(installed, grad, x, LayerGeometry.from_ints(geometry))


@torch.library.custom_op("tract_hub::route_weight", mutates_args=(), tags=_TAGS)
def route_weight(weight: torch.Tensor, x: torch.Tensor, layer: int, geometry: list[int]) -> torch.Tensor:
    """The weight, unchanged (copied); its backward applies TrAct. Notes DDP's gradient synchronization."""
    return _route_weight(weight, x, layer, geometry)


@route_weight.register_fake
def _route_weight_fake(weight: torch.Tensor, x: torch.Tensor, layer: int, geometry: list[int]) -> torch.Tensor:
    return torch.empty_like(weight)


@torch.library.custom_op("tract_hub::weight_gradient", mutates_args=(), tags=_TAGS)
def weight_gradient(grad: torch.Tensor, x: torch.Tensor, layer: int, geometry: list[int]) -> torch.Tensor:
    """TrAct's gradient for the weight that the layer's call used, given the ordinary one."""
    return _weight_gradient(grad, x, layer, geometry)


@weight_gradient.register_fake
def _weight_gradient_fake(grad: torch.Tensor, x: torch.Tensor, layer: int, geometry: list[int]) -> torch.Tensor:
    return torch.empty_like(grad)


def _setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    _, x, layer, geometry = inputs
    ctx.save_for_backward(x)
    ctx.layer, ctx.geometry = layer, geometry


def _backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    return weight_gradient(grad, x, ctx.layer, ctx.geometry), None, None, None


route_weight.register_autograd(_backward, setup_context=_setup_context)
# Meta tensors (not the compiler's fake ones) run the real code: nothing in it may read a tensor on the host, and
# on the meta device any attempt raises, which is how the tests prove the backward free of host-device syncs.
route_weight.register_kernel("meta")(_route_weight)
weight_gradient.register_kernel("meta")(_weight_gradient)

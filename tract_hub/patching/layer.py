"""TrAct installed on one layer: an instance-level ``forward`` that leaves the module's class and state alone.

:class:`TrActForward` is stored as ``module.forward`` (an instance attribute shadows the class method), so the
module keeps its class, parameters, buffers, hooks and ``state_dict``. It runs the layer's own forward under a
:class:`~tract_hub.core.LayerOpMode` that passes the weight the Linear/convolution call actually uses through the
``tract_hub::route_weight`` operator, whose backward turns the ordinary weight gradient into TrAct's. The call's
own backward still computes the gradient ``G``, the input gradient and the bias gradient (PyTorch's fused
kernels, bit-identical to an unpatched layer), and the forward output is bit-identical too.

Without gradients (``torch.no_grad``, inference), with a weight that needs no gradient (a frozen model whose
input gradients are wanted) and under ``torch.export`` the layer runs its plain forward: TrAct only changes the
training gradient of the weight, so an exported model is the plain model (and says so once); a scripted one is
too (:mod:`~tract_hub.patching.scripting`).
Under ``torch.func`` transforms the call goes through :mod:`~tract_hub.patching.functional`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import _torch_internals as internals
from ..core.layer_ops import LayerCall, LayerOpMode
from ..core.module_ref import ModuleRef
from ..errors import UnsupportedLayerError
from . import ops
from .functional import functional_route
from .gradient import GradientState
from .row_masks import RowMaskSource

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class TrActForward:
    """The forward installed on a patched layer. Holds the TrAct settings of that layer.

    Attributes:
        module_ref: the patched layer, held weakly (the layer holds this object as its ``forward``: no reference
            cycle); :attr:`module` is the layer itself. Pickling and deepcopy refer to the copied layer.
        lam: the regularization lambda.
        exact: TrAct of everything accumulated into ``.grad`` (default) instead of a solve per backward call.
        found_by: which rule located the layer (``"target"`` when named by the user).
        unfrozen: the weight had ``requires_grad=False`` and the patch turned it on (``unpatch`` turns it off).
        previous_forward: an instance-level forward that was there before (e.g. from another library), which
            is called in place of the class forward and restored by ``unpatch``.
        process_group: the group over which gradients are averaged when no DDP/FSDP2 wrapper says so.
        row_masks: where the model says which of the layer's input rows are padding (set by a registry rule).
        state: the accumulation and what ``.grad`` held after the last backward (copied and pickled with the
            model, so that a copy continues an accumulation exactly).
    """

    module_ref: ModuleRef
    lam: float
    exact: bool = True
    found_by: str = "target"
    unfrozen: bool = False
    previous_forward: Any = None
    process_group: Any = field(default=None, repr=False)
    row_masks: RowMaskSource | None = field(default=None, repr=False)
    handle: int = field(default=0, repr=False, compare=False)
    warned_export: bool = field(default=False, repr=False, compare=False)
    state: GradientState = field(default_factory=GradientState, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.handle = ops.LAYERS.add(self)

    @property
    def module(self) -> nn.Module:
        """The patched layer."""
        return self.module_ref()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["handle"]  # handles are per process
        state["process_group"] = None  # process groups belong to one run of one process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.handle = ops.LAYERS.add(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        forward = self.layer_forward()
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        if internals.exporting():
            self._warn_plain_export()
            return forward(*args, **kwargs)
        mode = LayerOpMode(self._route)
        with mode:
            output = forward(*args, **kwargs)
        if mode.calls != 1:
            raise UnsupportedLayerError(
                f"TrAct on {type(self.module).__name__}: its forward made {mode.calls} Linear/convolution calls "
                "(F.linear, F.conv1d/2d/3d); TrAct needs exactly one to know which weight it acts on. "
                "Patch the layer that makes the call instead."
            )
        return output

    def layer_forward(self) -> Any:
        if self.previous_forward is not None:
            return self.previous_forward
        return functools.partial(type(self.module).forward, self.module)

    def _route(self, call: LayerCall) -> Any:
        # the registered parameter itself: real shapes also while torch.fx traces (it proxies module attributes)
        registered = self.module._parameters.get("weight")
        geometry = call.geometry(like=call.weight if registered is None else registered)
        row_mask = self.row_masks.mask_for(self.module, call.input) if self.row_masks is not None else None
        if internals.under_functorch(call.weight, call.input):
            return call.run(weight=functional_route(call.weight, call.input, row_mask, geometry, self.lam))
        if isinstance(call.weight, torch.Tensor) and not call.weight.requires_grad:
            return call.run()  # e.g. a frozen model's input gradients: nothing for TrAct to change
        return call.run(weight=ops.route(call.weight, call.input.detach(), row_mask, self.handle, geometry))

    def reset(self) -> None:
        """Forget what was accumulated (a switch between exact and per-backward mode)."""
        self.state = GradientState()

    def _warn_plain_export(self) -> None:
        if self.warned_export:
            return
        self.warned_export = True
        logger.warning(
            "torch.export: the TrAct-patched %s is exported as the plain layer (TrAct only changes training "
            "gradients; the exported program computes the same outputs). Train the patched model itself.",
            type(self.module).__name__,
        )


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


__all__ = ["TrActForward", "probe_input"]

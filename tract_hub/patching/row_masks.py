"""Input rows a model marks as padding, left out of TrAct's covariance and row count.

Some models feed padding through their first layer: timm's NaFlex ViTs pack images of different sizes into one
batch of patch sequences and pass ``patch_valid`` (``False`` for padding patches) to their patch embedding. Those
rows are zeros, so they add nothing to ``G`` or ``x^T x``, but they would raise ``N``: the step would depend on how
much padding a batch carries. A registry rule names the forward argument that holds the mask
(``Rule(row_mask=("embeds", "patch_valid"))``); :class:`RowMaskSource` reads it from that module's forward with a
pre-hook, and the patched Linear inside uses it for its call. The same hooks see whether a training forward of the
owner called the patched layer at all: one that did not (timm's NaFlex patch interpolator uses ``proj.weight``
itself) is refused, since its weight gradient would be the plain one.

Example:
    >>> import torch
    >>> class Embed(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.proj = torch.nn.Linear(4, 2)
    ...     def forward(self, x, valid=None):
    ...         return self.proj(x)
    >>> embed = Embed()
    >>> source = RowMaskSource(embed, "valid")
    >>> seen = []
    >>> hook = embed.proj.register_forward_pre_hook(lambda m, a: seen.append(source.mask_for(m, a[0])))
    >>> _ = embed(torch.randn(2, 3, 4), valid=torch.tensor([[1, 1, 0], [1, 0, 0]]).bool())
    >>> seen[0].tolist()
    [True, True, False, True, False, False]
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..core.module_ref import ModuleRef
from ..errors import UnsupportedLayerError


class RowMaskSource:
    """Reads the argument ``argument`` of ``owner``'s forward while it runs (see the module docstring)."""

    def __init__(self, owner: nn.Module, argument: str, layer: nn.Module | None = None) -> None:
        parameters = inspect.signature(owner.forward).parameters
        if argument not in parameters:
            raise UnsupportedLayerError(
                f"row mask: {type(owner).__name__}.forward has no argument {argument!r} (it takes "
                f"{', '.join(parameters)}); the rule's row_mask must name the forward argument that marks padding"
            )
        # held weakly: the owner holds this object through its hooks (no reference cycle)
        self.owner_ref = ModuleRef(owner)
        self.layer_ref = None if layer is None else ModuleRef(layer)
        self.argument = argument
        self.current: torch.Tensor | None = None
        self.layer_called = False
        owner.register_forward_pre_hook(_CaptureMask(self), with_kwargs=True)
        owner.register_forward_hook(_ReleaseMask(self), always_call=True)
        if layer is not None:
            owner.register_forward_hook(_RequireLayerCall(self))

    @property
    def owner(self) -> nn.Module:
        return self.owner_ref()

    @property
    def layer(self) -> nn.Module | None:
        return None if self.layer_ref is None else self.layer_ref()

    def remove(self) -> None:
        """Take the hooks off the owner module."""
        for hooks in (self.owner._forward_pre_hooks, self.owner._forward_hooks):
            for key, hook in list(hooks.items()):
                if isinstance(hook, _CaptureMask | _ReleaseMask | _RequireLayerCall) and hook.source is self:
                    del hooks[key]
        self.current = None

    def mask_for(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
        """The mask of the running call of ``module`` (a Linear inside the owner), one bool per input row."""
        self.layer_called = True
        mask = self.current
        if mask is None:
            return None
        rows = x.numel() // x.shape[-1] if x.dim() else 0
        if not isinstance(module, nn.Linear) or mask.numel() != rows:
            raise UnsupportedLayerError(
                f"row mask {self.argument!r} of {type(self.owner).__name__} has {mask.numel()} entries, but the "
                f"patched {type(module).__name__} received {rows} input rows (shape {tuple(x.shape)}); a row mask "
                "needs one entry per row of a Linear layer's input"
            )
        return mask.reshape(-1).to(torch.bool)


class _CaptureMask:
    """Forward pre-hook of the owner: keeps the mask argument for the patched layer's call."""

    def __init__(self, source: RowMaskSource) -> None:
        self.source = source

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        bound = inspect.signature(module.forward).bind_partial(*args, **kwargs).arguments
        value = bound.get(self.source.argument)
        if value is None:  # also accepted inside a dict input ({"patches": ..., "patch_valid": ...})
            packed = (v.get(self.source.argument) for v in bound.values() if isinstance(v, Mapping))
            value = next((v for v in packed if v is not None), None)
        self.source.current = value if isinstance(value, torch.Tensor) else None
        self.source.layer_called = False


class _RequireLayerCall:
    """Forward hook of the owner: refuses a training forward that used the patched layer's weight without calling
    the layer (timm's NaFlex patch interpolator resamples ``proj.weight`` for other patch sizes and calls
    ``F.linear`` itself), where TrAct would silently not apply."""

    def __init__(self, source: RowMaskSource) -> None:
        self.source = source

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        layer = self.source.layer
        weight = getattr(layer, "weight", None)
        if self.source.layer_called or not torch.is_grad_enabled() or not isinstance(weight, torch.Tensor):
            return
        if weight.requires_grad:
            raise UnsupportedLayerError(
                f"TrAct on {type(layer).__name__} inside {type(module).__name__}: this forward of "
                f"{type(module).__name__} did not call the patched layer but may use its weight directly (timm's "
                "NaFlex patch interpolator does so for patches of another size), where TrAct cannot apply: the "
                "gradient would be the plain one. Train with the model's own patch size, or tract_hub.unpatch the "
                "model for this input."
            )


class _ReleaseMask:
    """Forward hook of the owner (also when its forward raises): drops the mask."""

    def __init__(self, source: RowMaskSource) -> None:
        self.source = source

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.source.current = None

"""The Linear/convolution operations TrAct acts on, and how to find the one inside a layer's forward.

A layer's own ``forward`` may pad (``padding_mode``, timm's Same convolutions), standardize its weight
(timm's StdConv2d and ScaledStdConv2d) or reshape its input before calling ``F.conv2d`` / ``F.linear``. Running
the forward under :class:`LayerOpMode` (a ``TorchFunctionMode``) hands that call, with the input and weight it
really receives, to a callback; everything else runs untouched.

Example:
    >>> import torch
    >>> calls = []
    >>> def record(call):
    ...     calls.append(call.geometry())
    ...     return call.run()
    >>> with LayerOpMode(record):
    ...     _ = torch.nn.Conv2d(3, 8, 3, padding="same")(torch.randn(1, 3, 8, 8))
    >>> calls[0].padding
    ((1, 1), (1, 1))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..engine.geometry import LayerGeometry

#: The module types TrAct can be installed on (and their subclasses, e.g. timm's StdConv2d or Conv2dSame).
SUPPORTED_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: The functions whose weight TrAct acts on, and their parameter names in order.
LAYER_OPS: dict[Callable[..., Any], tuple[str, ...]] = {
    torch.conv1d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    torch.conv2d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    torch.conv3d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    F.linear: ("input", "weight", "bias"),
}
_DEFAULTS: dict[str, Any] = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}


@dataclass
class LayerCall:
    """One call of a Linear/convolution function, with its arguments by name."""

    func: Callable[..., Any]
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def bind(cls, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> LayerCall:
        names = LAYER_OPS[func]
        arguments = dict(zip(names, args, strict=False))
        arguments.update(kwargs)
        return cls(func, arguments)

    @property
    def is_linear(self) -> bool:
        return self.func is F.linear

    @property
    def input(self) -> torch.Tensor:
        return self.arguments["input"]

    @property
    def weight(self) -> torch.Tensor:
        return self.arguments["weight"]

    def geometry(self, like: torch.Tensor | None = None) -> LayerGeometry:
        """The call's geometry; ``like``: a tensor of the weight's shape to read it from (default: the weight)."""
        weight = self.weight if like is None else like
        if self.is_linear:
            return LayerGeometry.for_linear(weight)
        get = self.arguments.get
        return LayerGeometry.for_conv(
            weight,
            stride=get("stride", _DEFAULTS["stride"]),
            padding=get("padding", _DEFAULTS["padding"]),
            dilation=get("dilation", _DEFAULTS["dilation"]),
            groups=get("groups", _DEFAULTS["groups"]),
        )

    def run(self, weight: torch.Tensor | None = None) -> Any:
        """Call the function with the original arguments (``weight`` replaced when given)."""
        arguments = dict(self.arguments)
        if weight is not None:
            arguments["weight"] = weight
        return self.func(*(arguments.get(name, _DEFAULTS.get(name)) for name in LAYER_OPS[self.func]))


class LayerOpMode(TorchFunctionMode):
    """Route each Linear/convolution call made inside the ``with`` block through ``on_call``.

    ``on_call`` receives a :class:`LayerCall` and returns the operation's result (usually ``call.run(...)``).
    ``calls`` counts the routed calls.
    """

    def __init__(self, on_call: Callable[[LayerCall], Any]) -> None:
        super().__init__()
        self.on_call = on_call
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        if func not in LAYER_OPS:
            return func(*args, **kwargs)
        self.calls += 1
        return self.on_call(LayerCall.bind(func, args, kwargs))

"""Record what a module passes to F.linear / F.conv*d: a minimal TorchFunctionMode written for the tests,
independent of tract_hub.patching.interception."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_NAMES = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3}


class OpRecorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _CONV or func is F.linear:
            call = dict(zip(_NAMES, args))
            call.update(kwargs)
            call["dims"] = _CONV.get(func, 0)
            self.calls.append(call)
        return func(*args, **kwargs)


def explicit_conv_args(call: dict[str, Any]) -> dict[str, Any]:
    """kernel, stride, (before, after) padding, dilation, groups of a recorded convolution call."""
    dims = call["dims"]
    weight = call["weight"]
    kernel = tuple(weight.shape[2:])

    def tup(value: Any) -> tuple[int, ...]:
        return (value,) * dims if isinstance(value, int) else tuple(value)

    stride, dilation = tup(call.get("stride", 1)), tup(call.get("dilation", 1))
    padding = call.get("padding", 0)
    if padding == "valid":
        pads = tuple((0, 0) for _ in kernel)
    elif padding == "same":
        pads = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))
    else:
        pads = tuple((p, p) for p in tup(padding))
    return {"kernel": kernel, "stride": stride, "padding": pads, "dilation": dilation, "groups": call.get("groups", 1)}

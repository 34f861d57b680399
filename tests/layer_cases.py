"""The table of layer configurations the engine must handle: every Linear/convolution option, timm's layers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerCase:
    id: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    channels_last: bool = False
    transpose_input: bool = False  # feed a non-contiguous view (last two dims swapped back)

    def make_input(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if self.transpose_input:
            shape = (*self.input_shape[:-2], self.input_shape[-1], self.input_shape[-2])
            return torch.randn(shape, generator=generator, dtype=dtype).transpose(-1, -2)
        x = torch.randn(self.input_shape, generator=generator, dtype=dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _timm(name: str, *args, **kwargs) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm.layers

        return getattr(timm.layers, name)(*args, **kwargs)

    return build


LAYER_CASES = [
    LayerCase("linear-2d", lambda: nn.Linear(12, 7), (40, 12)),
    LayerCase("linear-3d-tokens", lambda: nn.Linear(12, 7), (3, 20, 12)),
    LayerCase("linear-4d-nobias", lambda: nn.Linear(12, 7, bias=False), (2, 3, 9, 12)),
    LayerCase("linear-noncontiguous", lambda: nn.Linear(12, 7), (4, 15, 12), transpose_input=True),
    LayerCase("linear-small-batch", lambda: nn.Linear(48, 9), (5, 48)),
    LayerCase("conv1d-k3", lambda: nn.Conv1d(3, 8, 3, padding=1), (4, 3, 30)),
    LayerCase("conv1d-s2-d2-p2", lambda: nn.Conv1d(3, 8, 5, stride=2, padding=2, dilation=2), (4, 3, 40)),
    LayerCase("conv1d-groups", lambda: nn.Conv1d(4, 6, 3, groups=2, padding=1), (4, 4, 25)),
    LayerCase("conv1d-same-even", lambda: nn.Conv1d(3, 5, 4, padding="same"), (4, 3, 20)),
    LayerCase("conv1d-circular", lambda: nn.Conv1d(3, 5, 3, padding=1, padding_mode="circular"), (4, 3, 20)),
    LayerCase("conv2d-cifar-stem", lambda: nn.Conv2d(3, 16, 3, padding=1, bias=False), (8, 3, 12, 12)),
    LayerCase("conv2d-imagenet-stem", lambda: nn.Conv2d(3, 16, 7, stride=2, padding=3), (4, 3, 24, 24)),
    LayerCase("conv2d-patch-embed", lambda: nn.Conv2d(3, 24, 4, stride=4), (6, 3, 16, 16)),
    LayerCase("conv2d-patch-embed-ragged", lambda: nn.Conv2d(3, 24, 4, stride=4), (6, 3, 18, 17)),
    LayerCase("conv2d-dilation", lambda: nn.Conv2d(3, 8, 3, dilation=2, padding=2), (4, 3, 14, 14)),
    LayerCase("conv2d-groups", lambda: nn.Conv2d(6, 9, 3, groups=3, padding=1), (4, 6, 10, 10)),
    LayerCase("conv2d-depthwise", lambda: nn.Conv2d(3, 6, 3, groups=3, padding=1), (4, 3, 10, 10)),
    LayerCase("conv2d-padding-tuple", lambda: nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2)), (4, 3, 11, 13)),
    LayerCase("conv2d-same-even", lambda: nn.Conv2d(3, 8, 4, padding="same"), (4, 3, 10, 10)),
    LayerCase("conv2d-same-dilated", lambda: nn.Conv2d(3, 8, 3, padding="same", dilation=3), (4, 3, 12, 12)),
    LayerCase("conv2d-valid", lambda: nn.Conv2d(3, 8, 3, padding="valid"), (4, 3, 10, 10)),
    LayerCase("conv2d-reflect", lambda: nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), (4, 3, 10, 10)),
    LayerCase("conv2d-replicate", lambda: nn.Conv2d(3, 8, 5, padding=2, padding_mode="replicate"), (4, 3, 10, 10)),
    LayerCase(
        "conv2d-circular", lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1, padding_mode="circular"), (4, 3, 11, 11)
    ),
    LayerCase(
        "conv2d-channels-last", lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), (4, 3, 12, 12), channels_last=True
    ),
    LayerCase("conv2d-small-batch", lambda: nn.Conv2d(3, 8, 7, stride=2), (1, 3, 9, 9)),
    LayerCase("conv3d-video-stem", lambda: nn.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1), (2, 3, 4, 10, 10)),
    LayerCase("conv3d-tubelet", lambda: nn.Conv3d(3, 8, (2, 4, 4), stride=(2, 4, 4)), (2, 3, 4, 8, 8)),
    LayerCase("timm-Conv2dSame", _timm("Conv2dSame", 3, 8, 3, stride=2), (4, 3, 11, 11)),
    LayerCase("timm-StdConv2d", _timm("StdConv2d", 3, 8, 7, stride=2, padding=3), (4, 3, 16, 16)),
    LayerCase("timm-StdConv2dSame", _timm("StdConv2dSame", 3, 8, 3, stride=2), (4, 3, 11, 11)),
    LayerCase("timm-ScaledStdConv2d", _timm("ScaledStdConv2d", 3, 8, 3, stride=2, padding=1), (4, 3, 12, 12)),
    LayerCase("timm-ScaledStdConv2dSame", _timm("ScaledStdConv2dSame", 3, 8, 4, stride=2), (4, 3, 13, 13)),
]

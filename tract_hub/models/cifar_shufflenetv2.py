"""CIFAR ShuffleNet v2 (1x), registered as a timm architecture.

The CIFAR-100 suite's shufflenetv2 in the form of its reference repository (weiaicunzai/pytorch-cifar100): a
stride-1 3x3 convolution to 24 channels with batch norm (no ReLU), stages of 1 + 3, 1 + 7 and 1 + 3 units (116,
232, 464 channels; the first unit of each downsamples), a 1x1 convolution to 1024 (batch norm, ReLU), then the
classifier. A downsampling unit concatenates two branches of the whole input (depthwise 3x3 stride 2 - 1x1, and
1x1 - depthwise 3x3 stride 2 - 1x1); a basic unit splits the channels in half and transforms one half
(1x1 - depthwise 3x3 - 1x1); both end in a shuffle of two groups. Every convolution has a bias.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_shufflenetv2_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (1360896, 'stem.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg
from .cifar_shufflenet import channel_shuffle

#: (output channels, basic units after the downsampling unit) per stage.
STAGES = ((116, 3), (232, 7), (464, 3))


def _branch(in_chs: int, out_chs: int, stride: int) -> nn.Sequential:
    """1x1 (ReLU) - depthwise 3x3 of ``stride`` - 1x1 to ``out_chs`` (ReLU)."""
    return nn.Sequential(
        ConvBnAct(in_chs, in_chs, 1, bias=True),
        ConvBnAct(in_chs, in_chs, 3, bias=True, act=False, stride=stride, padding=1, groups=in_chs),
        ConvBnAct(in_chs, out_chs, 1, bias=True),
    )


class DownsampleUnit(nn.Module):
    """[depthwise 3x3 stride 2 - 1x1 | 1x1 - depthwise 3x3 stride 2 - 1x1], ``out / 2`` each, then shuffle."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(
            ConvBnAct(in_chs, in_chs, 3, bias=True, act=False, stride=2, padding=1, groups=in_chs),
            ConvBnAct(in_chs, out_chs // 2, 1, bias=True),
        )
        self.branch = _branch(in_chs, out_chs // 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(torch.cat([self.shortcut(x), self.branch(x)], 1), 2)


class BasicUnit(nn.Module):
    """Split the channels; keep the first half, transform the second; concatenate; shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch = _branch(channels // 2, channels // 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, transformed = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([kept, self.branch(transformed)], 1), 2)


class CifarShuffleNetV2(CifarClassifier):
    """ShuffleNet v2 1x for 32x32 inputs (32 -> 16 -> 8 -> 4)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.0, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = ConvBnAct(in_chans, 24, 3, bias=True, act=False, padding=1)
        stages, channels = [], 24
        for width, units in STAGES:
            stages.append(nn.Sequential(DownsampleUnit(channels, width), *(BasicUnit(width) for _ in range(units))))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.conv_head = ConvBnAct(channels, 1024, 1, bias=True)
        self.init_head(1024, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_head(self.stages(self.stem(x)))


default_cfgs = generate_default_cfgs({"tract_shufflenetv2_cifar.untrained": cifar_cfg("stem.conv")})


@register_model
def tract_shufflenetv2_cifar(pretrained: bool = False, **kwargs: Any) -> CifarShuffleNetV2:
    """ShuffleNet v2 1x, CIFAR form (the suite's shufflenetv2)."""
    return build_model_with_cfg(CifarShuffleNetV2, "tract_shufflenetv2_cifar", pretrained, **kwargs)

"""CIFAR ShuffleNet (v1, 3 groups), registered as a timm architecture.

The CIFAR-100 suite's shufflenet in the form of its reference repository (weiaicunzai/pytorch-cifar100): a
stride-1 3x3 convolution to 24 channels (with bias, batch norm and ReLU), then stages of 4, 8 and 4 ShuffleNet
units (240, 480, 960 channels; the first unit of each has stride 2), then the classifier. A unit is a grouped 1x1
reduction to a quarter of its output (batch norm, ReLU), a channel shuffle, a depthwise 3x3 (batch norm), a
grouped 1x1 expansion (batch norm), then ReLU of the sum with the input, or, in a stride-2 unit, of the
concatenation with the input's 3x3 average pool. All convolutions have biases; the first unit's reduction is
grouped as well (the reference groups it although the paper does not).

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_shufflenet_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (1012108, 'stem.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg

GROUPS = 3
#: (output channels, units) per stage at 3 groups.
STAGES = ((240, 4), (480, 8), (960, 4))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (``(g, n)`` -> ``(n, g)``)."""
    batch, channels, height, width = x.shape
    return x.view(batch, groups, channels // groups, height, width).transpose(1, 2).reshape(batch, -1, height, width)


class ShuffleUnit(nn.Module):
    """Grouped 1x1 - shuffle - depthwise 3x3 - grouped 1x1, added to the input (stride 1) or concatenated to its
    average pool (stride 2 or a change of width), then ReLU."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, groups: int = GROUPS) -> None:
        super().__init__()
        mid = out_chs // 4
        self.groups = groups
        self.concat = stride != 1 or in_chs != out_chs
        self.reduce = ConvBnAct(in_chs, mid, 1, bias=True, groups=groups)
        self.depthwise = ConvBnAct(mid, mid, 3, bias=True, act=False, stride=stride, padding=1, groups=mid)
        expand_chs = out_chs - in_chs if self.concat else out_chs
        self.expand = ConvBnAct(mid, expand_chs, 1, bias=True, act=False, groups=groups)
        self.shortcut: nn.Module = nn.AvgPool2d(3, 2, 1) if self.concat else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(self.depthwise(channel_shuffle(self.reduce(x), self.groups)))
        shortcut = self.shortcut(x)
        return self.act(torch.cat([shortcut, out], 1) if self.concat else shortcut + out)


class CifarShuffleNet(CifarClassifier):
    """ShuffleNet v1 (3 groups) for 32x32 inputs (32 -> 16 -> 8 -> 4)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.0, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = ConvBnAct(in_chans, 24, 3, bias=True, padding=1)
        stages, channels = [], 24
        for width, units in STAGES:
            stage = []
            for index in range(units):
                stage.append(ShuffleUnit(channels, width, 2 if index == 0 else 1))
                channels = width
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.init_head(channels, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


default_cfgs = generate_default_cfgs({"tract_shufflenet_cifar.untrained": cifar_cfg("stem.conv")})


@register_model
def tract_shufflenet_cifar(pretrained: bool = False, **kwargs: Any) -> CifarShuffleNet:
    """ShuffleNet v1 with 3 groups, CIFAR form (the suite's shufflenet)."""
    return build_model_with_cfg(CifarShuffleNet, "tract_shufflenet_cifar", pretrained, **kwargs)

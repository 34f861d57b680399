"""CIFAR Wide ResNets (Zagoruyko and Komodakis 2016), registered as timm architectures.

The CIFAR-100 suite's wideresnet (WRN-40-10) in the form of its reference repository
(weiaicunzai/pytorch-cifar100): a 3x3 stem of 16 channels, three stages of ``(depth - 4) / 6`` pre-activation
blocks ``16k``, ``32k``, ``64k`` wide (BN-ReLU-conv-BN-ReLU-dropout-conv, convolutions with biases, dropout 0.5),
a 1x1 convolution on the raw input as the shortcut when the shape changes, then BN-ReLU and the classifier.

Example:
    >>> import torch, tract_hub.models, timm
    >>> model = timm.create_model("tract_wideresnet40_10_cifar", depth=10, widen_factor=1)
    >>> model(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 100])
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ..errors import InvalidArgumentError
from ._cifar import CifarClassifier, cifar_cfg


class WideBasic(nn.Module):
    """Pre-activation block: BN-ReLU-3x3 (stride)-BN-ReLU-dropout-3x3, added to the (projected) input."""

    def __init__(self, in_planes: int, planes: int, stride: int, block_drop_rate: float) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(in_planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_planes, planes, 3, stride, 1),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Dropout(block_drop_rate),
            nn.Conv2d(planes, planes, 3, 1, 1),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class WideResNet(CifarClassifier):
    """WRN-``depth``-``widen_factor`` for 32x32 inputs; ``block_drop_rate`` is the dropout inside each block."""

    def __init__(
        self,
        depth: int = 40,
        widen_factor: int = 10,
        num_classes: int = 100,
        in_chans: int = 3,
        block_drop_rate: float = 0.5,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise InvalidArgumentError(f"depth={depth}: a Wide ResNet's depth is 6n + 4 with n >= 1 (10, 16, 28, 40)")
        blocks = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1)
        stages, in_planes = [], 16
        for index, width in enumerate((16, 32, 64)):
            planes = width * widen_factor
            stage = []
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                stage.append(WideBasic(in_planes, planes, stride, block_drop_rate))
                in_planes = planes
            stages.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(in_planes)
        self.act = nn.ReLU(inplace=True)
        self.init_head(in_planes, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.layers(self.conv1(x))))


default_cfgs = generate_default_cfgs({"tract_wideresnet40_10_cifar.untrained": cifar_cfg("conv1")})


@register_model
def tract_wideresnet40_10_cifar(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-40-10 with dropout 0.5 in its blocks (the suite's wideresnet)."""
    return build_model_with_cfg(WideResNet, "tract_wideresnet40_10_cifar", pretrained, **kwargs)

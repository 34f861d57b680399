"""CIFAR Inception v3, registered as a timm architecture.

The CIFAR-100 suite's inceptionv3 in the form of its reference repository (weiaicunzai/pytorch-cifar100): a stem
of stride-1 convolutions (3x3 to 32, 3x3 to 32, 3x3 to 64, 1x1 to 80, unpadded 3x3 to 192: 32x32 -> 30x30), three
Inception-A modules (whose pool branch ends in a 3x3 convolution in that repository), a grid reduction to 14x14,
four Inception-C modules with factorized 7x7 convolutions, a grid reduction to 6x6, two Inception-E modules, then
dropout 0.5 and the classifier. Every convolution is bias-free, with batch norm and ReLU.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_inceptionv3_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (22318148, 'stem.0.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg


def _seq(*specs: tuple[int, int, Any, dict[str, Any]]) -> nn.Sequential:
    return nn.Sequential(*(ConvBnAct(i, o, k, **kw) for i, o, k, kw in specs))


class InceptionA(nn.Module):
    """1x1 | 1x1-5x5 | 1x1-3x3-3x3 | 3x3 average pool-3x3; ``64 + 64 + 96 + pool_features`` channels out."""

    def __init__(self, in_chs: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBnAct(in_chs, 64, 1)
        self.branch5x5 = _seq((in_chs, 48, 1, {}), (48, 64, 5, {"padding": 2}))
        self.branch3x3dbl = _seq((in_chs, 64, 1, {}), (64, 96, 3, {"padding": 1}), (96, 96, 3, {"padding": 1}))
        self.branch_pool = nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBnAct(in_chs, pool_features, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch5x5(x), self.branch3x3dbl(x), self.branch_pool(x)], 1)


class ReductionB(nn.Module):
    """Grid reduction (unpadded, stride 2): 3x3 to 384 | 1x1-3x3-3x3 to 96 | 3x3 max-pool."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBnAct(in_chs, 384, 3, stride=2)
        self.branch3x3dbl = _seq((in_chs, 64, 1, {}), (64, 96, 3, {"padding": 1}), (96, 96, 3, {"stride": 2}))
        self.branch_pool = nn.MaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.branch3x3dbl(x), self.branch_pool(x)], 1)


class InceptionC(nn.Module):
    """1x1 | 1x1-7x1-1x7 | 1x1-(7x1-1x7) twice | 3x3 average pool-1x1; 768 channels out."""

    def __init__(self, in_chs: int, c7: int) -> None:
        super().__init__()
        tall, wide = {"padding": (3, 0)}, {"padding": (0, 3)}
        self.branch1x1 = ConvBnAct(in_chs, 192, 1)
        self.branch7x7 = _seq((in_chs, c7, 1, {}), (c7, c7, (7, 1), tall), (c7, 192, (1, 7), wide))
        self.branch7x7dbl = _seq(
            (in_chs, c7, 1, {}),
            (c7, c7, (7, 1), tall),
            (c7, c7, (1, 7), wide),
            (c7, c7, (7, 1), tall),
            (c7, 192, (1, 7), wide),
        )
        self.branch_pool = nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBnAct(in_chs, 192, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch7x7(x), self.branch7x7dbl(x), self.branch_pool(x)], 1)


class ReductionD(nn.Module):
    """Grid reduction (unpadded, stride 2): 1x1-3x3 to 320 | 1x1-1x7-7x1-3x3 to 192 | 3x3 average pool."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch3x3 = _seq((in_chs, 192, 1, {}), (192, 320, 3, {"stride": 2}))
        self.branch7x7x3 = _seq(
            (in_chs, 192, 1, {}),
            (192, 192, (1, 7), {"padding": (0, 3)}),
            (192, 192, (7, 1), {"padding": (3, 0)}),
            (192, 192, 3, {"stride": 2}),
        )
        self.branch_pool = nn.AvgPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.branch7x7x3(x), self.branch_pool(x)], 1)


class InceptionE(nn.Module):
    """1x1 | 1x1-(1x3 & 3x1) | 1x1-3x3-(1x3 & 3x1) | 3x3 average pool-1x1; 2048 channels out."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        wide, tall = {"padding": (0, 1)}, {"padding": (1, 0)}
        self.branch1x1 = ConvBnAct(in_chs, 320, 1)
        self.branch3x3 = ConvBnAct(in_chs, 384, 1)
        self.branch3x3_wide = ConvBnAct(384, 384, (1, 3), **wide)
        self.branch3x3_tall = ConvBnAct(384, 384, (3, 1), **tall)
        self.branch3x3dbl = _seq((in_chs, 448, 1, {}), (448, 384, 3, {"padding": 1}))
        self.branch3x3dbl_wide = ConvBnAct(384, 384, (1, 3), **wide)
        self.branch3x3dbl_tall = ConvBnAct(384, 384, (3, 1), **tall)
        self.branch_pool = nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBnAct(in_chs, 192, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3(x)
        double = self.branch3x3dbl(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_wide(single),
                self.branch3x3_tall(single),
                self.branch3x3dbl_wide(double),
                self.branch3x3dbl_tall(double),
                self.branch_pool(x),
            ],
            1,
        )


class CifarInceptionV3(CifarClassifier):
    """Inception v3 for 32x32 inputs (30x30 -> 14x14 -> 6x6 grids)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.5, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = _seq(
            (in_chans, 32, 3, {"padding": 1}),
            (32, 32, 3, {"padding": 1}),
            (32, 64, 3, {"padding": 1}),
            (64, 80, 1, {}),
            (80, 192, 3, {}),
        )
        self.blocks = nn.Sequential(
            InceptionA(192, 32),
            InceptionA(256, 64),
            InceptionA(288, 64),
            ReductionB(288),
            InceptionC(768, 128),
            InceptionC(768, 160),
            InceptionC(768, 160),
            InceptionC(768, 192),
            ReductionD(768),
            InceptionE(1280),
            InceptionE(2048),
        )
        self.init_head(2048, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


default_cfgs = generate_default_cfgs({"tract_inceptionv3_cifar.untrained": cifar_cfg("stem.0.conv")})


@register_model
def tract_inceptionv3_cifar(pretrained: bool = False, **kwargs: Any) -> CifarInceptionV3:
    """Inception v3, CIFAR form (the suite's inceptionv3)."""
    return build_model_with_cfg(CifarInceptionV3, "tract_inceptionv3_cifar", pretrained, **kwargs)

"""CIFAR Inception v4 and Inception-ResNet v2, registered as timm architectures.

The CIFAR-100 suite's inceptionv4 and inceptionresnetv2 in the form of its reference repository
(weiaicunzai/pytorch-cifar100). Both share a stride-1 stem (an unpadded 3x3 to 32 channels, 32x32 -> 30x30, then
3x3 convolutions and max-pools of stride 1 concatenated to 384 channels). Inception v4: 4 Inception-A, a
reduction to 14x14, 7 Inception-B, a reduction to 7x7, 3 Inception-C (1536 channels), dropout 0.2. Inception-ResNet
v2 in that repository: 5 residual A blocks (384 channels), a reduction to 14x14, 10 residual B blocks (1154), a
reduction to 6x6, 5 residual C blocks (2048), dropout 0.2. Its residual blocks add a 1x1-convolution shortcut
(always, with bias) to the 1x1-projected branches (scaled by 0.1 in B and C), then apply batch norm and ReLU.
Every convolution of a branch is bias-free, with batch norm and ReLU.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_inceptionv4_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (41296516, 'stem.convs.0.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg

TALL_7, WIDE_7 = {"padding": (3, 0)}, {"padding": (0, 3)}
TALL_3, WIDE_3 = {"padding": (1, 0)}, {"padding": (0, 1)}
SAME = {"padding": 1}
DOWN = {"stride": 2}


def _seq(*specs: tuple[int, int, Any, dict[str, Any]]) -> nn.Sequential:
    return nn.Sequential(*(ConvBnAct(i, o, k, **kw) for i, o, k, kw in specs))


class _Concat(nn.Module):
    """The branches (``self.branches``), run on the same input and concatenated along the channels."""

    branches: nn.ModuleList

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


class Stem(nn.Module):
    """3x3 (unpadded) to 32, 3x3 to 32, 3x3 to 64; [3x3 to 96 | max-pool]; [1x1-7x1-1x7-3x3 | 1x1-3x3] to 96 each;
    [max-pool | 3x3 to 192]: 384 channels at 30x30."""

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.convs = _seq((in_chans, 32, 3, {}), (32, 32, 3, SAME), (32, 64, 3, SAME))
        self.mixed_a = nn.ModuleList([ConvBnAct(64, 96, 3, **SAME), nn.MaxPool2d(3, 1, 1)])
        self.mixed_b = nn.ModuleList(
            [
                _seq((160, 64, 1, {}), (64, 64, (7, 1), TALL_7), (64, 64, (1, 7), WIDE_7), (64, 96, 3, SAME)),
                _seq((160, 64, 1, {}), (64, 96, 3, SAME)),
            ]
        )
        self.mixed_c = nn.ModuleList([nn.MaxPool2d(3, 1, 1), ConvBnAct(192, 192, 3, **SAME)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        for mixed in (self.mixed_a, self.mixed_b, self.mixed_c):
            x = torch.cat([branch(x) for branch in mixed], 1)
        return x


class InceptionA(_Concat):
    """1x1-3x3-3x3 | 1x1-3x3 | 1x1 | average pool-1x1, 96 channels each."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [
                _seq((in_chs, 64, 1, {}), (64, 96, 3, SAME), (96, 96, 3, SAME)),
                _seq((in_chs, 64, 1, {}), (64, 96, 3, SAME)),
                ConvBnAct(in_chs, 96, 1),
                nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBnAct(in_chs, 96, 1)),
            ]
        )


class ReductionA(_Concat):
    """Unpadded stride-2 reduction: 1x1 (k)-3x3 (l)-3x3 (m) | 3x3 (n) | max-pool; ``in + n + m`` channels."""

    def __init__(self, in_chs: int, k: int, l: int, m: int, n: int) -> None:  # noqa: E741 - the paper's names
        super().__init__()
        self.out_chs = in_chs + n + m
        self.branches = nn.ModuleList(
            [
                _seq((in_chs, k, 1, {}), (k, l, 3, SAME), (l, m, 3, DOWN)),
                ConvBnAct(in_chs, n, 3, **DOWN),
                nn.MaxPool2d(3, 2),
            ]
        )


class InceptionB(_Concat):
    """1x1 to 384 | 1x1-1x7-7x1 to 256 | 1x1-(1x7-7x1) twice to 256 | average pool-1x1 to 128."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [
                ConvBnAct(in_chs, 384, 1),
                _seq((in_chs, 192, 1, {}), (192, 224, (1, 7), WIDE_7), (224, 256, (7, 1), TALL_7)),
                _seq(
                    (in_chs, 192, 1, {}),
                    (192, 192, (1, 7), WIDE_7),
                    (192, 224, (7, 1), TALL_7),
                    (224, 224, (1, 7), WIDE_7),
                    (224, 256, (7, 1), TALL_7),
                ),
                nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBnAct(in_chs, 128, 1)),
            ]
        )


class ReductionB(_Concat):
    """Padded stride-2 reduction: 1x1-3x3 to 192 | 1x1-1x7-7x1-3x3 to 320 | max-pool."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        down = {"stride": 2, "padding": 1}
        self.branches = nn.ModuleList(
            [
                _seq((in_chs, 192, 1, {}), (192, 192, 3, down)),
                _seq(
                    (in_chs, 256, 1, {}),
                    (256, 256, (1, 7), WIDE_7),
                    (256, 320, (7, 1), TALL_7),
                    (320, 320, 3, down),
                ),
                nn.MaxPool2d(3, 2, 1),
            ]
        )


class InceptionC(nn.Module):
    """1x1 to 256 | 1x1 to 384 then (3x1 & 1x3) to 256 | 1x1-1x3-3x1 to 512 then (1x3 & 3x1) to 256 |
    average pool-1x1 to 256: 1536 channels."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBnAct(in_chs, 256, 1)
        self.branch3x3 = ConvBnAct(in_chs, 384, 1)
        self.branch3x3_tall = ConvBnAct(384, 256, (3, 1), **TALL_3)
        self.branch3x3_wide = ConvBnAct(384, 256, (1, 3), **WIDE_3)
        self.branch3x3dbl = _seq((in_chs, 384, 1, {}), (384, 448, (1, 3), WIDE_3), (448, 512, (3, 1), TALL_3))
        self.branch3x3dbl_wide = ConvBnAct(512, 256, (1, 3), **WIDE_3)
        self.branch3x3dbl_tall = ConvBnAct(512, 256, (3, 1), **TALL_3)
        self.branch_pool = nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBnAct(in_chs, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single, double = self.branch3x3(x), self.branch3x3dbl(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_tall(single),
                self.branch3x3_wide(single),
                self.branch3x3dbl_wide(double),
                self.branch3x3dbl_tall(double),
                self.branch_pool(x),
            ],
            1,
        )


class ResidualInception(nn.Module):
    """``ReLU(BN(shortcut(x) + scale * project(cat(branches(x)))))`` with 1x1 convolutions (with bias) as the
    shortcut and the projection."""

    def __init__(self, in_chs: int, out_chs: int, branches: list[nn.Module], branch_chs: int, scale: float) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.project = nn.Conv2d(branch_chs, out_chs, 1)
        self.shortcut = nn.Conv2d(in_chs, out_chs, 1)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.project(torch.cat([branch(x) for branch in self.branches], 1))
        return self.act(self.bn(self.shortcut(x) + self.scale * residual))


def residual_a(in_chs: int) -> ResidualInception:
    """1x1 to 32 | 1x1-3x3 to 32 | 1x1-3x3 (48)-3x3 to 64, projected to 384 (no scaling)."""
    branches = [
        ConvBnAct(in_chs, 32, 1),
        _seq((in_chs, 32, 1, {}), (32, 32, 3, SAME)),
        _seq((in_chs, 32, 1, {}), (32, 48, 3, SAME), (48, 64, 3, SAME)),
    ]
    return ResidualInception(in_chs, 384, branches, 128, 1.0)


def residual_b(in_chs: int) -> ResidualInception:
    """1x1 to 192 | 1x1 (128)-1x7 (160)-7x1 to 192, projected to 1154 and scaled by 0.1."""
    branches = [
        ConvBnAct(in_chs, 192, 1),
        _seq((in_chs, 128, 1, {}), (128, 160, (1, 7), WIDE_7), (160, 192, (7, 1), TALL_7)),
    ]
    return ResidualInception(in_chs, 1154, branches, 384, 0.1)


def residual_c(in_chs: int) -> ResidualInception:
    """1x1 to 192 | 1x1 (192)-1x3 (224)-3x1 to 256, projected to 2048 and scaled by 0.1."""
    branches = [
        ConvBnAct(in_chs, 192, 1),
        _seq((in_chs, 192, 1, {}), (192, 224, (1, 3), WIDE_3), (224, 256, (3, 1), TALL_3)),
    ]
    return ResidualInception(in_chs, 2048, branches, 448, 0.1)


class ResidualReductionB(_Concat):
    """Unpadded stride-2 reduction: 1x1-3x3 to 384 | 1x1-3x3 to 288 | 1x1-3x3-3x3 to 320 | max-pool."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.out_chs = in_chs + 384 + 288 + 320
        self.branches = nn.ModuleList(
            [
                _seq((in_chs, 256, 1, {}), (256, 384, 3, DOWN)),
                _seq((in_chs, 256, 1, {}), (256, 288, 3, DOWN)),
                _seq((in_chs, 256, 1, {}), (256, 288, 3, SAME), (288, 320, 3, DOWN)),
                nn.MaxPool2d(3, 2),
            ]
        )


class CifarInceptionV4(CifarClassifier):
    """Inception v4 for 32x32 inputs (30x30 -> 14x14 -> 7x7 grids)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.2, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = Stem(in_chans)
        reduction_a = ReductionA(384, 192, 224, 256, 384)
        self.blocks = nn.Sequential(
            *(InceptionA(384) for _ in range(4)),
            reduction_a,
            *(InceptionB(reduction_a.out_chs if i == 0 else 1024) for i in range(7)),
            ReductionB(1024),
            *(InceptionC(1536) for _ in range(3)),
        )
        self.init_head(1536, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class CifarInceptionResNetV2(CifarClassifier):
    """Inception-ResNet v2 (the reference repository's form) for 32x32 inputs (30x30 -> 14x14 -> 6x6 grids)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.2, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = Stem(in_chans)
        reduction_a = ReductionA(384, 256, 256, 384, 384)
        reduction_b = ResidualReductionB(1154)
        self.blocks = nn.Sequential(
            *(residual_a(384) for _ in range(5)),
            reduction_a,
            *(residual_b(reduction_a.out_chs if i == 0 else 1154) for i in range(10)),
            reduction_b,
            *(residual_c(reduction_b.out_chs if i == 0 else 2048) for i in range(5)),
        )
        self.init_head(2048, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


default_cfgs = generate_default_cfgs(
    {
        "tract_inceptionv4_cifar.untrained": cifar_cfg("stem.convs.0.conv"),
        "tract_inceptionresnetv2_cifar.untrained": cifar_cfg("stem.convs.0.conv"),
    }
)


@register_model
def tract_inceptionv4_cifar(pretrained: bool = False, **kwargs: Any) -> CifarInceptionV4:
    """Inception v4, CIFAR form (the suite's inceptionv4)."""
    return build_model_with_cfg(CifarInceptionV4, "tract_inceptionv4_cifar", pretrained, **kwargs)


@register_model
def tract_inceptionresnetv2_cifar(pretrained: bool = False, **kwargs: Any) -> CifarInceptionResNetV2:
    """Inception-ResNet v2, CIFAR form of the reference repository (the suite's inceptionresnetv2)."""
    return build_model_with_cfg(CifarInceptionResNetV2, "tract_inceptionresnetv2_cifar", pretrained, **kwargs)

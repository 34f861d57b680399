"""CIFAR GoogLeNet (Inception v1), registered as a timm architecture.

The CIFAR-100 suite's googlenet in the form of its reference repository (weiaicunzai/pytorch-cifar100): a stem of
three 3x3 convolutions (64, 64, 192 channels, stride 1), a 3x3 stride-2 max-pool, the nine Inception modules of
the original network (3a, 3b | pool | 4a-4e | pool | 5a, 5b) in which the 5x5 branch is two stacked 3x3
convolutions and every convolution of a module has a bias and batch norm, then dropout 0.4 and the classifier.
One bug of the reference is not reproduced: the batch norm after the first 3x3 of its 5x5 branch is built as
``BatchNorm2d(n, n)``, which sets that layer's epsilon to its channel count; here every epsilon is the default.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_googlenet_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (6402564, 'stem.0.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg

#: (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection) of modules 3a to 5b, with "pool" between.
MODULES: tuple[tuple[int, ...] | str, ...] = (
    (192, 64, 96, 128, 16, 32, 32),
    (256, 128, 128, 192, 32, 96, 64),
    "pool",
    (480, 192, 96, 208, 16, 48, 64),
    (512, 160, 112, 224, 24, 64, 64),
    (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64),
    (528, 256, 160, 320, 32, 128, 128),
    "pool",
    (832, 256, 160, 320, 32, 128, 128),
    (832, 384, 192, 384, 48, 128, 128),
)


class Inception(nn.Module):
    """Four parallel branches concatenated: 1x1; 1x1-3x3; 1x1-3x3-3x3; 3x3 max-pool-1x1."""

    def __init__(self, in_chs: int, n1x1: int, n3x3_red: int, n3x3: int, n5x5_red: int, n5x5: int, pool: int) -> None:
        super().__init__()
        self.branch1 = ConvBnAct(in_chs, n1x1, 1, bias=True)
        self.branch2 = nn.Sequential(
            ConvBnAct(in_chs, n3x3_red, 1, bias=True), ConvBnAct(n3x3_red, n3x3, 3, bias=True, padding=1)
        )
        self.branch3 = nn.Sequential(
            ConvBnAct(in_chs, n5x5_red, 1, bias=True),
            ConvBnAct(n5x5_red, n5x5, 3, bias=True, padding=1),
            ConvBnAct(n5x5, n5x5, 3, bias=True, padding=1),
        )
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvBnAct(in_chs, pool, 1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class CifarGoogLeNet(CifarClassifier):
    """GoogLeNet for 32x32 inputs (32 -> 16 -> 8 -> 4 by three max-pools)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.4, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvBnAct(in_chans, 64, 3, padding=1),
            ConvBnAct(64, 64, 3, padding=1),
            ConvBnAct(64, 192, 3, padding=1),
            nn.MaxPool2d(3, 2, 1),
        )
        modules = [nn.MaxPool2d(3, 2, 1) if spec == "pool" else Inception(*spec) for spec in MODULES]
        self.inception = nn.Sequential(*modules)
        self.init_head(1024, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.inception(self.stem(x))


default_cfgs = generate_default_cfgs({"tract_googlenet_cifar.untrained": cifar_cfg("stem.0.conv")})


@register_model
def tract_googlenet_cifar(pretrained: bool = False, **kwargs: Any) -> CifarGoogLeNet:
    """GoogLeNet, CIFAR form (the suite's googlenet)."""
    return build_model_with_cfg(CifarGoogLeNet, "tract_googlenet_cifar", pretrained, **kwargs)

"""CIFAR DenseNet-BC, registered as timm architectures.

The CIFAR-100 suite's densenet121/161/201 in the form of its reference repository
(weiaicunzai/pytorch-cifar100): a 3x3 stem of ``2k`` channels (no pooling), dense blocks of
BN-ReLU-1x1 (``4k``)-BN-ReLU-3x3 (``k``) layers concatenated to their input, transitions BN-1x1 (halving the
channels, rounded down)-2x2 average pool, then BN-ReLU and the classifier.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_densenet121_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (7048548, 'conv1')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, cifar_cfg


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 to ``4 * growth``-BN-ReLU-3x3 to ``growth``, concatenated to the input."""

    def __init__(self, in_chs: int, growth: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(in_chs),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_chs, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.branch(x)], 1)


class Transition(nn.Sequential):
    """BN, 1x1 convolution to ``out_chs``, 2x2 average pool."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__(nn.BatchNorm2d(in_chs), nn.Conv2d(in_chs, out_chs, 1, bias=False), nn.AvgPool2d(2, 2))


class CifarDenseNet(CifarClassifier):
    """DenseNet-BC for 32x32 inputs: ``blocks`` dense layers per block, growth rate ``growth``, compression 0.5."""

    def __init__(
        self,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
        growth: int = 32,
        num_classes: int = 100,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        channels = 2 * growth
        self.conv1 = nn.Conv2d(in_chans, channels, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for index, count in enumerate(blocks):
            layers = []
            for _ in range(count):
                layers.append(DenseLayer(channels, growth))
                channels += growth
            stages.append(nn.Sequential(*layers))
            if index < len(blocks) - 1:
                stages.append(Transition(channels, channels // 2))
                channels //= 2
        stages += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*stages)
        self.init_head(channels, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.conv1(x))


default_cfgs = generate_default_cfgs(
    {f"tract_densenet{depth}_cifar.untrained": cifar_cfg("conv1") for depth in (121, 161, 201)}
)


def _create(variant: str, pretrained: bool, blocks: tuple[int, ...], growth: int, **kwargs: Any) -> CifarDenseNet:
    return build_model_with_cfg(CifarDenseNet, variant, pretrained, blocks=blocks, growth=growth, **kwargs)


@register_model
def tract_densenet121_cifar(pretrained: bool = False, **kwargs: Any) -> CifarDenseNet:
    """DenseNet-121 (growth 32), CIFAR form (the suite's densenet121)."""
    return _create("tract_densenet121_cifar", pretrained, (6, 12, 24, 16), 32, **kwargs)


@register_model
def tract_densenet161_cifar(pretrained: bool = False, **kwargs: Any) -> CifarDenseNet:
    """DenseNet-161 (growth 48), CIFAR form (the suite's densenet161)."""
    return _create("tract_densenet161_cifar", pretrained, (6, 12, 36, 24), 48, **kwargs)


@register_model
def tract_densenet201_cifar(pretrained: bool = False, **kwargs: Any) -> CifarDenseNet:
    """DenseNet-201 (growth 32), CIFAR form (the suite's densenet201)."""
    return _create("tract_densenet201_cifar", pretrained, (6, 12, 48, 32), 32, **kwargs)

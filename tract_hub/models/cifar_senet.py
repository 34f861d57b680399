"""CIFAR SE-ResNets (squeeze-and-excitation, reduction 16), registered as timm architectures.

The CIFAR-100 suite's seresnet18/34/50/101/152 in the form of its reference repository
(weiaicunzai/pytorch-cifar100): a :class:`~tract_hub.models.cifar_resnet.CifarResNet` whose convolutions carry
biases, whose residual branch ends in a ReLU before the excitation rescales it, and whose block output is
``ReLU(excited residual + shortcut)``.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_seresnet18_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (11314012, 'conv1')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import cifar_cfg
from .cifar_resnet import CifarResNet, projection

REDUCTION = 16


class SqueezeExcite(nn.Module):
    """Global average -> Linear(c, c / 16) -> ReLU -> Linear -> sigmoid: a weight per channel."""

    def __init__(self, channels: int, reduction: int = REDUCTION) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3))))))
        return x * weights[:, :, None, None]


class SEBasicBlock(nn.Module):
    """Two 3x3 convolutions (with biases), each followed by batch norm and ReLU; excitation; + shortcut; ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(planes)
        self.downsample = projection(in_planes, planes, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        return self.act(self.se(out) + self.downsample(x))


class SEBottleneck(nn.Module):
    """1x1 / 3x3 (stride) / 1x1 to ``4 * planes`` (with biases), each with batch norm and ReLU; excitation;
    + shortcut; ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.act = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(out_planes)
        self.downsample = projection(in_planes, out_planes, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.act(self.bn3(self.conv3(out)))
        return self.act(self.se(out) + self.downsample(x))


default_cfgs = generate_default_cfgs(
    {f"tract_seresnet{depth}_cifar.untrained": cifar_cfg("conv1") for depth in (18, 34, 50, 101, 152)}
)


def _create(variant: str, pretrained: bool, layers: tuple[int, ...], block: type[nn.Module], **kwargs: Any) -> Any:
    return build_model_with_cfg(CifarResNet, variant, pretrained, layers=layers, block=block, stem_bias=True, **kwargs)


@register_model
def tract_seresnet18_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """SE-ResNet-18, CIFAR stem (the suite's seresnet18)."""
    return _create("tract_seresnet18_cifar", pretrained, (2, 2, 2, 2), SEBasicBlock, **kwargs)


@register_model
def tract_seresnet34_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """SE-ResNet-34, CIFAR stem (the suite's seresnet34)."""
    return _create("tract_seresnet34_cifar", pretrained, (3, 4, 6, 3), SEBasicBlock, **kwargs)


@register_model
def tract_seresnet50_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """SE-ResNet-50, CIFAR stem (the suite's seresnet50)."""
    return _create("tract_seresnet50_cifar", pretrained, (3, 4, 6, 3), SEBottleneck, **kwargs)


@register_model
def tract_seresnet101_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """SE-ResNet-101, CIFAR stem (the suite's seresnet101)."""
    return _create("tract_seresnet101_cifar", pretrained, (3, 4, 23, 3), SEBottleneck, **kwargs)


@register_model
def tract_seresnet152_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """SE-ResNet-152, CIFAR stem (the suite's seresnet152)."""
    return _create("tract_seresnet152_cifar", pretrained, (3, 8, 36, 3), SEBottleneck, **kwargs)

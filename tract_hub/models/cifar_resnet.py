"""CIFAR-style ResNets (3x3 stride-1 stem, no max-pool), registered as timm architectures.

These are the ResNets of the paper's CIFAR experiments (ResNet-18), of the CIFAR-100 suite of its Table 1
(ResNet-18/34/50/101/152 in the form of the suite's reference repository, weiaicunzai/pytorch-cifar100: 64-wide
stem, stages of 64/128/256/512 channels, the stride on the 3x3 convolution of a bottleneck) and of the demo
(ResNet-8 on 16x16 digits). :class:`CifarResNet` takes the block type, so the SE-ResNets, ResNeXts and
stochastic-depth ResNets of the suite (their own files) reuse it. timm has no stride-1 stem, so these are
registered with timm's own registry when :mod:`tract_hub.models` is imported: ``timm.create_model(
"tract_resnet18_cifar")`` then works, and a checkpoint of one loads through ``timm.create_model("hf-hub:...")`` in
any process that imported tract_hub.

Example:
    >>> import torch, tract_hub.models, timm
    >>> model = timm.create_model("tract_resnet8_cifar", num_classes=10, in_chans=1)
    >>> model(torch.randn(2, 1, 16, 16)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, cifar_cfg

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def projection(in_planes: int, out_planes: int, stride: int, bias: bool = False) -> nn.Module:
    """The shortcut: identity, or a 1x1 convolution and batch norm when the shape changes."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=bias), nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, added to the shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act = nn.ReLU(inplace=True)
        self.downsample = projection(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.downsample(x))


class Bottleneck(nn.Module):
    """1x1 reduce to ``width`` (default ``planes``), 3x3 (carrying the stride), 1x1 expand to ``4 * planes``,
    added to the shortcut, then ReLU; ``groups`` groups the reduction and the 3x3 (ResNeXt)."""

    expansion = 4

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, *, width: int | None = None, groups: int = 1
    ) -> None:
        super().__init__()
        width = width or planes
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, width, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.act = nn.ReLU(inplace=True)
        self.downsample = projection(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act(out + self.downsample(x))


class CifarResNet(CifarClassifier):
    """ResNet with a 3x3 stride-1 stem and no max-pool; ``layers`` blocks per stage, widths doubling.

    ``block`` is a block class taking ``(in_planes, planes, stride)`` with an ``expansion`` attribute (its output
    is ``expansion * planes`` wide); ``stem_bias`` gives the stem convolution a bias (the SE-ResNets and
    stochastic-depth ResNets of the suite's reference repository have one).
    """

    def __init__(
        self,
        layers: tuple[int, ...] = (2, 2, 2, 2),
        num_classes: int = 10,
        in_chans: int = 3,
        width: int = 64,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        block: type[nn.Module] = BasicBlock,
        stem_bias: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=stem_bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        expansion = int(getattr(block, "expansion", 1))
        total, index, stages, in_planes = sum(layers), 0, [], width
        for stage_index, blocks in enumerate(layers):
            planes = width * 2**stage_index
            stage = []
            for block_index in range(blocks):
                stride = 2 if stage_index > 0 and block_index == 0 else 1
                stage.append(self.make_block(block, in_planes, planes, stride, index, total))
                in_planes, index = planes * expansion, index + 1
            stages.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*stages)
        self.init_head(in_planes, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def make_block(
        self, block: type[nn.Module], in_planes: int, planes: int, stride: int, index: int, total: int
    ) -> nn.Module:
        """Block ``index`` of ``total`` (a hook for families whose blocks depend on their depth)."""
        return block(in_planes, planes, stride)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.act1(self.bn1(self.conv1(x))))


def _cfg(**kwargs: Any) -> dict[str, Any]:
    """The 10-class configuration of the paper's CIFAR-10 ResNets and the demo (CIFAR-10 statistics)."""
    return cifar_cfg("conv1", num_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD, **kwargs)


default_cfgs = generate_default_cfgs(
    {
        "tract_resnet8_cifar.untrained": _cfg(),
        "tract_resnet18_cifar.untrained": _cfg(),
        "tract_resnet34_cifar.untrained": _cfg(),
        "tract_resnet50_cifar.untrained": cifar_cfg("conv1"),
        "tract_resnet101_cifar.untrained": cifar_cfg("conv1"),
        "tract_resnet152_cifar.untrained": cifar_cfg("conv1"),
    }
)


def _create(variant: str, pretrained: bool, layers: tuple[int, ...], **kwargs: Any) -> CifarResNet:
    return build_model_with_cfg(CifarResNet, variant, pretrained, layers=layers, **kwargs)


@register_model
def tract_resnet8_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-8, CIFAR stem: one BasicBlock in each of three stages (16, 32, 64 wide by default)."""
    kwargs.setdefault("width", 16)
    return _create("tract_resnet8_cifar", pretrained, (1, 1, 1), **kwargs)


@register_model
def tract_resnet18_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-18, CIFAR stem (the paper's CIFAR-10/100 model and the suite's resnet18)."""
    return _create("tract_resnet18_cifar", pretrained, (2, 2, 2, 2), **kwargs)


@register_model
def tract_resnet34_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-34, CIFAR stem (the suite's resnet34)."""
    return _create("tract_resnet34_cifar", pretrained, (3, 4, 6, 3), **kwargs)


@register_model
def tract_resnet50_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-50, CIFAR stem, bottleneck blocks (the suite's resnet50)."""
    return _create("tract_resnet50_cifar", pretrained, (3, 4, 6, 3), block=Bottleneck, **kwargs)


@register_model
def tract_resnet101_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-101, CIFAR stem, bottleneck blocks (the suite's resnet101)."""
    return _create("tract_resnet101_cifar", pretrained, (3, 4, 23, 3), block=Bottleneck, **kwargs)


@register_model
def tract_resnet152_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-152, CIFAR stem, bottleneck blocks (the suite's resnet152)."""
    return _create("tract_resnet152_cifar", pretrained, (3, 8, 36, 3), block=Bottleneck, **kwargs)

"""CIFAR ResNeXts (cardinality 32, bottleneck width 4 per group at 64 planes), registered as timm architectures.

The CIFAR-100 suite's resnext50/101/152 in the form of its reference repository (weiaicunzai/pytorch-cifar100):
a :class:`~tract_hub.models.cifar_resnet.CifarResNet` of aggregated bottlenecks in which both the 1x1 reduction
and the 3x3 convolution are grouped (32 groups, ``2 * planes`` channels), and the 1x1 expansion gives
``4 * planes``. Its ResNeXt-152 has 3/4/36/3 blocks.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_resnext50_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (14788772, 'conv1')
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from ._cifar import cifar_cfg
from .cifar_resnet import Bottleneck, CifarResNet

CARDINALITY = 32
GROUP_WIDTH = 4  # channels per group at 64 planes; scales with the planes of the stage


class ResNeXtBottleneck(Bottleneck):
    """Grouped 1x1 reduce, grouped 3x3 (stride), 1x1 expand to ``4 * planes``, + shortcut, ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        width = CARDINALITY * (GROUP_WIDTH * planes // 64)
        super().__init__(in_planes, planes, stride, width=width, groups=CARDINALITY)


default_cfgs = generate_default_cfgs(
    {f"tract_resnext{depth}_cifar.untrained": cifar_cfg("conv1") for depth in (50, 101, 152)}
)


def _create(variant: str, pretrained: bool, layers: tuple[int, ...], **kwargs: Any) -> CifarResNet:
    return build_model_with_cfg(CifarResNet, variant, pretrained, layers=layers, block=ResNeXtBottleneck, **kwargs)


@register_model
def tract_resnext50_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNeXt-50 (32 groups), CIFAR stem (the suite's resnext50)."""
    return _create("tract_resnext50_cifar", pretrained, (3, 4, 6, 3), **kwargs)


@register_model
def tract_resnext101_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNeXt-101 (32 groups), CIFAR stem (the suite's resnext101)."""
    return _create("tract_resnext101_cifar", pretrained, (3, 4, 23, 3), **kwargs)


@register_model
def tract_resnext152_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNeXt-152 (32 groups, 3/4/36/3 blocks as in the reference repository), CIFAR stem (the suite's
    resnext152)."""
    return _create("tract_resnext152_cifar", pretrained, (3, 4, 36, 3), **kwargs)

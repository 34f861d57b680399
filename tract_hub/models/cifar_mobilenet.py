"""CIFAR MobileNet (v1), registered as a timm architecture.

The CIFAR-100 suite's mobilenet in the form of its reference repository (weiaicunzai/pytorch-cifar100): a
stride-1 3x3 convolution to 32 channels, then 13 depthwise-separable blocks (depthwise 3x3 without bias and
pointwise 1x1 with bias, each with batch norm and ReLU) to 1024 channels, four of them of stride 2
(32 -> 2), then the classifier. ``width_multiplier`` thins every layer as in the paper.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_mobilenet_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (3315428, 'stem.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg

#: (output channels, stride) of the depthwise-separable blocks at width multiplier 1.
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *((512, 1),) * 5,
    (1024, 2),
    (1024, 1),
)


class DepthwiseSeparable(nn.Sequential):
    """Depthwise 3x3 (stride, no bias)-BN-ReLU, pointwise 1x1 (with bias)-BN-ReLU."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__(
            ConvBnAct(in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs),
            ConvBnAct(in_chs, out_chs, 1, bias=True),
        )


class CifarMobileNet(CifarClassifier):
    """MobileNet v1 for 32x32 inputs."""

    def __init__(
        self,
        num_classes: int = 100,
        in_chans: int = 3,
        width_multiplier: float = 1.0,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        channels = int(32 * width_multiplier)
        self.stem = ConvBnAct(in_chans, channels, 3, padding=1)
        blocks = []
        for width, stride in BLOCKS:
            out = int(width * width_multiplier)
            blocks.append(DepthwiseSeparable(channels, out, stride))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.init_head(channels, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


default_cfgs = generate_default_cfgs({"tract_mobilenet_cifar.untrained": cifar_cfg("stem.conv")})


@register_model
def tract_mobilenet_cifar(pretrained: bool = False, **kwargs: Any) -> CifarMobileNet:
    """MobileNet v1 (width 1), CIFAR form (the suite's mobilenet)."""
    return build_model_with_cfg(CifarMobileNet, "tract_mobilenet_cifar", pretrained, **kwargs)

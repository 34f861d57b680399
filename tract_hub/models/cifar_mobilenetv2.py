"""CIFAR MobileNet v2, registered as a timm architecture.

The CIFAR-100 suite's mobilenetv2 in the form of its reference repository (weiaicunzai/pytorch-cifar100): a stem
that is a 1x1 convolution to 32 channels with padding 1 (so 32x32 becomes 34x34; kept as the reference has it),
then inverted-residual bottlenecks (1x1 expansion, depthwise 3x3, linear 1x1 projection, all with biases, batch
norm and ReLU6; residual when the shape is kept) with the paper's table of widths and repeats, the 160-channel
stage of stride 1 instead of 2 (34 -> 17 -> 9 -> 5), a 1x1 convolution to 1280,
global average pooling and the classifier (a 1x1 convolution on the pooled features in the reference, the
equivalent linear layer here).

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_mobilenetv2_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (2369380, 'stem.0')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, cifar_cfg

#: (expansion, output channels, repeats, stride of the first block) per stage.
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 1),
    (6, 320, 1, 1),
)


def conv_bn_relu6(in_chs: int, out_chs: int, kernel_size: int, relu: bool = True, **kwargs: Any) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_chs, out_chs, kernel_size, **kwargs), nn.BatchNorm2d(out_chs)]
    return [*layers, nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    """1x1 to ``expansion * in``-3x3 depthwise (stride)-1x1 linear projection; + input when the shape is kept."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_chs * expansion
        self.use_residual = stride == 1 and in_chs == out_chs
        self.branch = nn.Sequential(
            *conv_bn_relu6(in_chs, hidden, 1),
            *conv_bn_relu6(hidden, hidden, 3, stride=stride, padding=1, groups=hidden),
            *conv_bn_relu6(hidden, out_chs, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return out + x if self.use_residual else out


class CifarMobileNetV2(CifarClassifier):
    """MobileNet v2 for 32x32 inputs."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.0, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(*conv_bn_relu6(in_chans, 32, 1, padding=1))
        blocks, channels = [], 32
        for expansion, width, repeats, stride in STAGES:
            for index in range(repeats):
                blocks.append(InvertedResidual(channels, width, stride if index == 0 else 1, expansion))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.conv_head = nn.Sequential(*conv_bn_relu6(channels, 1280, 1))
        self.init_head(1280, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_head(self.blocks(self.stem(x)))


default_cfgs = generate_default_cfgs({"tract_mobilenetv2_cifar.untrained": cifar_cfg("stem.0")})


@register_model
def tract_mobilenetv2_cifar(pretrained: bool = False, **kwargs: Any) -> CifarMobileNetV2:
    """MobileNet v2, CIFAR form (the suite's mobilenetv2)."""
    return build_model_with_cfg(CifarMobileNetV2, "tract_mobilenetv2_cifar", pretrained, **kwargs)

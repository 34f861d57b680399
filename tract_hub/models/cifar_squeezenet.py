"""CIFAR SqueezeNet with simple bypass, registered as a timm architecture.

The CIFAR-100 suite's squeezenet in the form of its reference repository (weiaicunzai/pytorch-cifar100): a
stride-1 3x3 convolution to 96 channels with batch norm, ReLU and a 2x2 max-pool, eight Fire modules (1x1 squeeze,
then 1x1 and 3x3 expands concatenated; every convolution with bias, batch norm and ReLU) with identity bypasses
around fire3, fire5 and fire7 and 2x2 max-pools after fire4 and fire8, then the classifier. The reference's
classifier is a 1x1 convolution before global average pooling; the linear layer after pooling here computes the
same function with the same parameters (both maps are affine and commute with the average).

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_squeezenet_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (781156, 'stem.0.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg


class Fire(nn.Module):
    """1x1 squeeze to ``squeeze``; 1x1 and 3x3 expands to ``out / 2`` each, concatenated."""

    def __init__(self, in_chs: int, out_chs: int, squeeze: int) -> None:
        super().__init__()
        self.squeeze = ConvBnAct(in_chs, squeeze, 1, bias=True)
        self.expand1x1 = ConvBnAct(squeeze, out_chs // 2, 1, bias=True)
        self.expand3x3 = ConvBnAct(squeeze, out_chs // 2, 3, bias=True, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand1x1(x), self.expand3x3(x)], 1)


class CifarSqueezeNet(CifarClassifier):
    """SqueezeNet (simple bypass) for 32x32 inputs (32 -> 16 -> 8 -> 4)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.0, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBnAct(in_chans, 96, 3, bias=True, padding=1), nn.MaxPool2d(2, 2))
        self.fire2 = Fire(96, 128, 16)
        self.fire3 = Fire(128, 128, 16)
        self.fire4 = Fire(128, 256, 32)
        self.fire5 = Fire(256, 256, 32)
        self.fire6 = Fire(256, 384, 48)
        self.fire7 = Fire(384, 384, 48)
        self.fire8 = Fire(384, 512, 64)
        self.fire9 = Fire(512, 512, 64)
        self.pool = nn.MaxPool2d(2, 2)
        self.init_head(512, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fire2(self.stem(x))
        x = self.fire3(x) + x
        x = self.pool(self.fire4(x))
        x = self.fire5(x) + x
        x = self.fire6(x)
        x = self.fire7(x) + x
        x = self.pool(self.fire8(x))
        return self.fire9(x)


default_cfgs = generate_default_cfgs({"tract_squeezenet_cifar.untrained": cifar_cfg("stem.0.conv")})


@register_model
def tract_squeezenet_cifar(pretrained: bool = False, **kwargs: Any) -> CifarSqueezeNet:
    """SqueezeNet with simple bypass, CIFAR form (the suite's squeezenet)."""
    return build_model_with_cfg(CifarSqueezeNet, "tract_squeezenet_cifar", pretrained, **kwargs)

"""CIFAR-style ResNets (3x3 stride-1 stem, no max-pool), registered as timm architectures.

These are the ResNets of the paper's CIFAR experiments (ResNet-18) and of the demo (ResNet-8 on 16x16 digits).
timm has no stride-1 stem, so they are registered with timm's own registry when :mod:`tract_hub.models` is
imported: ``timm.create_model("tract_resnet18_cifar")`` then works, and a checkpoint of one loads through
``timm.create_model("hf-hub:...")`` in any process that imported tract_hub.

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

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.downsample(x))


class CifarResNet(nn.Module):
    """ResNet with a 3x3 stride-1 stem and no max-pool; ``layers`` blocks per stage, widths doubling."""

    def __init__(
        self,
        layers: tuple[int, ...] = (2, 2, 2, 2),
        num_classes: int = 10,
        in_chans: int = 3,
        width: int = 64,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool={global_pool!r}: only 'avg' or '' are supported")
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        stages = []
        in_planes = width
        for index, blocks in enumerate(layers):
            planes = width * 2**index
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(in_planes, planes, stride)]
            stage += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            in_planes = planes
        self.layers = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = in_planes
        self.drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = nn.Linear(in_planes, num_classes) if num_classes else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.act1(self.bn1(self.conv1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool:
            x = x.mean((2, 3))
        x = self.drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": CIFAR_MEAN,
        "std": CIFAR_STD,
        "first_conv": "conv1",
        "classifier": "fc",
        "license": "mit",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "tract_resnet8_cifar.untrained": _cfg(),
        "tract_resnet18_cifar.untrained": _cfg(),
        "tract_resnet34_cifar.untrained": _cfg(),
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
    """ResNet-18, CIFAR stem (the paper's CIFAR-10/100 model)."""
    return _create("tract_resnet18_cifar", pretrained, (2, 2, 2, 2), **kwargs)


@register_model
def tract_resnet34_cifar(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-34, CIFAR stem."""
    return _create("tract_resnet34_cifar", pretrained, (3, 4, 6, 3), **kwargs)

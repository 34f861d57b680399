"""CIFAR Xception, registered as a timm architecture.

The CIFAR-100 suite's xception in the form of its reference repository (weiaicunzai/pytorch-cifar100): an entry
flow of two stride-1 3x3 convolutions (32, 64 channels) and three residual blocks of separable convolutions
(128 and 256 channels with stride-2 max-pools, then 728 without), a middle flow of eight residual blocks of three
separable convolutions (728), an exit flow (728 -> 1024 with a stride-2 max-pool, then separable convolutions to
1536 and 2048), and the classifier. Separable convolutions are bias-free; the 1x1 shortcut convolutions have a bias.

In the reference, the residual branches of the entry flow's second and third blocks and of the middle-flow blocks
begin with an in-place ReLU, which also rectifies the tensor their shortcut reads afterwards; so the reference
computes ``shortcut(relu(x)) + branch(relu(x))`` there, and so does :class:`XceptionBlock` with
``rectify_input=True``.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_xception_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (21013988, 'stem.0.conv')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, ConvBnAct, cifar_cfg

MIDDLE_BLOCKS = 8


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 (padding 1) then pointwise 1x1, both bias-free."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__(
            nn.Conv2d(in_chs, in_chs, 3, padding=1, groups=in_chs, bias=False),
            nn.Conv2d(in_chs, out_chs, 1, bias=False),
        )


def sep_bn(in_chs: int, out_chs: int) -> list[nn.Module]:
    return [SeparableConv2d(in_chs, out_chs), nn.BatchNorm2d(out_chs)]


class XceptionBlock(nn.Module):
    """``shortcut(x) + branch(x)``, after ``x = relu(x)`` when ``rectify_input``."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module, rectify_input: bool) -> None:
        super().__init__()
        self.rectify_input = rectify_input
        self.branch = branch
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rectify_input:
            x = torch.relu(x)
        return self.shortcut(x) + self.branch(x)


def entry_block(in_chs: int, out_chs: int, stride: int, rectify_input: bool) -> XceptionBlock:
    """Two separable convolutions (ReLU between) and a 3x3 max-pool of ``stride``; 1x1 convolution shortcut."""
    branch = nn.Sequential(*sep_bn(in_chs, out_chs), nn.ReLU(inplace=True), *sep_bn(out_chs, out_chs))
    branch.append(nn.MaxPool2d(3, stride, 1))
    shortcut = nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride), nn.BatchNorm2d(out_chs))
    return XceptionBlock(branch, shortcut, rectify_input)


def middle_block(channels: int = 728) -> XceptionBlock:
    """Three separable convolutions, each after a ReLU; identity shortcut (on the rectified input)."""
    branch = nn.Sequential(
        *sep_bn(channels, channels),
        nn.ReLU(inplace=True),
        *sep_bn(channels, channels),
        nn.ReLU(inplace=True),
        *sep_bn(channels, channels),
    )
    return XceptionBlock(branch, nn.Identity(), rectify_input=True)


def exit_block() -> XceptionBlock:
    """ReLU-separable 728-ReLU-separable 1024-max-pool (stride 2); a 1x1 stride-2 convolution shortcut on the raw
    input."""
    branch = nn.Sequential(
        nn.ReLU(), *sep_bn(728, 728), nn.ReLU(inplace=True), *sep_bn(728, 1024), nn.MaxPool2d(3, 2, 1)
    )
    shortcut = nn.Sequential(nn.Conv2d(728, 1024, 1, 2), nn.BatchNorm2d(1024))
    return XceptionBlock(branch, shortcut, rectify_input=False)


class CifarXception(CifarClassifier):
    """Xception for 32x32 inputs (32 -> 16 -> 8 -> 4)."""

    def __init__(
        self, num_classes: int = 100, in_chans: int = 3, drop_rate: float = 0.0, global_pool: str = "avg"
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBnAct(in_chans, 32, 3, padding=1), ConvBnAct(32, 64, 3, padding=1))
        self.entry = nn.Sequential(
            entry_block(64, 128, 2, rectify_input=False),
            entry_block(128, 256, 2, rectify_input=True),
            entry_block(256, 728, 1, rectify_input=True),
        )
        self.middle = nn.Sequential(*(middle_block() for _ in range(MIDDLE_BLOCKS)))
        self.exit = nn.Sequential(
            exit_block(),
            *sep_bn(1024, 1536),
            nn.ReLU(inplace=True),
            *sep_bn(1536, 2048),
            nn.ReLU(inplace=True),
        )
        self.init_head(2048, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.exit(self.middle(self.entry(self.stem(x))))


default_cfgs = generate_default_cfgs({"tract_xception_cifar.untrained": cifar_cfg("stem.0.conv")})


@register_model
def tract_xception_cifar(pretrained: bool = False, **kwargs: Any) -> CifarXception:
    """Xception, CIFAR form (the suite's xception)."""
    return build_model_with_cfg(CifarXception, "tract_xception_cifar", pretrained, **kwargs)

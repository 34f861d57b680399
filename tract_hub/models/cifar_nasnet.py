"""CIFAR NASNet-A (4 @ 264 wide at the first stage), registered as a timm architecture.

The CIFAR-100 suite's nasnet in the form of its reference repository (weiaicunzai/pytorch-cifar100): a stride-1
3x3 stem of 44 channels (batch norm, no ReLU), then three stages of 4 normal cells (44, 88, 176 filters per
branch, 6 branches concatenated) separated by two reduction cells (88 and 176 filters, 4 branches concatenated),
then ReLU and the classifier. Each cell combines its input ``x`` and the previous cell's input ``prev``;
separable branches are ReLU-separable convolution-BN twice; the pointwise convolutions have biases, and so do the
depthwise convolutions except the first of a normal cell's branches.

``prev`` is adapted to the cell as in the reference: a factorized reduction (ReLU, two 1x1 convolutions on the
even and on the shifted odd pixels, concatenated, batch norm) when it is twice the cell's resolution, a 1x1
projection (ReLU, convolution, batch norm) when its width differs, else taken as it is. One deliberate difference:
the reference builds both adapters in every cell although a cell can use at most one (0.89M of its 5.22M
parameters never take part in the output, which also breaks DistributedDataParallel); here each cell builds only
the adapter it uses, so the model has 4.33M parameters, every one of them trained.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_nasnet_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (4334056, 'stem.0')
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ._cifar import CifarClassifier, cifar_cfg


class SeparableConv2d(nn.Sequential):
    """Depthwise ``kernel_size`` (stride, same padding) then pointwise 1x1 with bias."""

    def __init__(
        self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, depthwise_bias: bool = True
    ) -> None:
        super().__init__(
            nn.Conv2d(in_chs, in_chs, kernel_size, stride, kernel_size // 2, groups=in_chs, bias=depthwise_bias),
            nn.Conv2d(in_chs, out_chs, 1),
        )


class SeparableBranch(nn.Sequential):
    """ReLU-separable (stride)-BN, ReLU-separable-BN; ``first_bias``: whether the first depthwise has a bias."""

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, first_bias: bool = True) -> None:
        super().__init__(
            nn.ReLU(),
            SeparableConv2d(channels, channels, kernel_size, stride, first_bias),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            SeparableConv2d(channels, channels, kernel_size),
            nn.BatchNorm2d(channels),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: ReLU, 1x1 on the even pixels and 1x1 on the pixels shifted by
    one, ``filters / 2`` each, concatenated, batch norm."""

    def __init__(self, in_chs: int, filters: int) -> None:
        super().__init__()
        self.path1 = nn.Conv2d(in_chs, filters // 2, 1)
        self.path2 = nn.Conv2d(in_chs, filters // 2, 1)
        self.bn = nn.BatchNorm2d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.path1(x[:, :, ::2, ::2]), self.path2(shifted[:, :, ::2, ::2])], 1))


def adapt_prev(prev_chs: int, filters: int, halve: bool) -> nn.Module:
    """What turns the previous cell's input into ``filters`` channels at the cell's resolution."""
    if halve:
        return FactorizedReduce(prev_chs, filters)
    if prev_chs != filters:
        return nn.Sequential(nn.ReLU(), nn.Conv2d(prev_chs, filters, 1), nn.BatchNorm2d(filters))
    return nn.Identity()


def _squeeze(in_chs: int, filters: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(in_chs, filters, 1, bias=bias), nn.BatchNorm2d(filters))


class NormalCell(nn.Module):
    """Five pairwise sums of separable branches, average pools and identities on ``h`` (the squeezed input) and
    ``p`` (the adapted previous input), concatenated with ``p``: ``6 * filters`` channels."""

    def __init__(self, in_chs: int, prev_chs: int, filters: int, halve_prev: bool) -> None:
        super().__init__()
        self.squeeze = _squeeze(in_chs, filters, bias=False)
        self.adapt_prev = adapt_prev(prev_chs, filters, halve_prev)
        self.h_sep3 = SeparableBranch(filters, 3, first_bias=False)
        self.p_sep3 = SeparableBranch(filters, 3, first_bias=False)
        self.h_sep5 = SeparableBranch(filters, 5, first_bias=False)
        self.p_sep5 = SeparableBranch(filters, 5, first_bias=False)
        self.p_sep3b = SeparableBranch(filters, 3, first_bias=False)
        self.avg = nn.AvgPool2d(3, 1, 1)

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        p = self.adapt_prev(prev)
        h = self.squeeze(x)
        return torch.cat(
            [
                p,
                self.h_sep3(h) + h,
                self.p_sep3(p) + self.h_sep5(h),
                self.avg(h) + h,
                self.avg(p) + self.avg(p),
                self.p_sep5(p) + self.p_sep3b(p),
            ],
            1,
        )


class ReductionCell(nn.Module):
    """Stride-2 separable branches and pools on ``h`` and ``p``, combined in two layers: ``4 * filters``
    channels at half the resolution."""

    def __init__(self, in_chs: int, prev_chs: int, filters: int) -> None:
        super().__init__()
        self.squeeze = _squeeze(in_chs, filters, bias=True)
        self.adapt_prev = adapt_prev(prev_chs, filters, halve=False)
        self.p_sep7 = SeparableBranch(filters, 7, stride=2)
        self.h_sep5 = SeparableBranch(filters, 5, stride=2)
        self.p_sep7b = SeparableBranch(filters, 7, stride=2)
        self.p_sep5 = SeparableBranch(filters, 5, stride=2)
        self.sep3 = SeparableBranch(filters, 3)
        self.max = nn.MaxPool2d(3, 2, 1)
        self.avg_down = nn.AvgPool2d(3, 2, 1)
        self.avg = nn.AvgPool2d(3, 1, 1)

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        p = self.adapt_prev(prev)
        h = self.squeeze(x)
        first = self.p_sep7(p) + self.h_sep5(h)
        second = self.max(h) + self.p_sep7b(p)
        third = self.avg_down(h) + self.p_sep5(p)
        return torch.cat([second, third, self.max(h) + self.sep3(first), self.avg(first) + second], 1)


class CifarNASNet(CifarClassifier):
    """NASNet-A for 32x32 inputs: ``repeats`` normal cells per stage, ``reductions`` reduction cells, ``filters``
    per branch at the first stage (the stem has as many channels)."""

    def __init__(
        self,
        num_classes: int = 100,
        in_chans: int = 3,
        repeats: int = 4,
        reductions: int = 2,
        filters: int = 44,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters))
        cells: list[nn.Module] = []
        # (channels, resolution level) of a cell's input x and of its previous input prev (the stem for the first)
        x_chs = prev_chs = filters
        x_level = prev_level = 0
        for stage in range(reductions + 1):
            for _ in range(repeats):
                cells.append(NormalCell(x_chs, prev_chs, filters, halve_prev=prev_level != x_level))
                x_chs, prev_chs, prev_level = 6 * filters, x_chs, x_level
            if stage < reductions:
                filters *= 2
                cells.append(ReductionCell(x_chs, prev_chs, filters))
                x_chs, prev_chs, prev_level, x_level = 4 * filters, x_chs, x_level, x_level + 1
        self.cells = nn.ModuleList(cells)
        self.init_head(x_chs, num_classes, drop_rate=drop_rate, global_pool=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        prev = x
        for cell in self.cells:
            x, prev = cell(x, prev), x
        return F.relu(x)


default_cfgs = generate_default_cfgs({"tract_nasnet_cifar.untrained": cifar_cfg("stem.0")})


@register_model
def tract_nasnet_cifar(pretrained: bool = False, **kwargs: Any) -> CifarNASNet:
    """NASNet-A (4 normal cells per stage, 44 filters), CIFAR form (the suite's nasnet)."""
    return build_model_with_cfg(CifarNASNet, "tract_nasnet_cifar", pretrained, **kwargs)

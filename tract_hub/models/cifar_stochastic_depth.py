"""CIFAR ResNets with stochastic depth (Huang et al. 2016), registered as timm architectures.

The CIFAR-100 suite's stochasticdepth18/34/50/101 in the form of its reference repository
(weiaicunzai/pytorch-cifar100): the survival probability of the residual branch falls linearly from 1 at the
first block to 0.5 at the last; in training one Bernoulli draw per block and batch keeps or drops the whole
branch, in evaluation the branch is scaled by its survival probability. As in the reference (which follows the
paper's official Torch code), a block returns ``shortcut + branch`` without a final ReLU; its basic blocks (and the
stem) have convolution biases, its bottlenecks do not.

One deliberate difference: a dropped branch is still computed and multiplied by 0 (the reference skips it), so
every parameter takes part in every step, which DistributedDataParallel requires, and the draw stays on the
device. The dropped branch's batch-norm statistics are therefore still updated.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_stochasticdepth18_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (11224932, 'conv1')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ..errors import InvalidArgumentError
from ._cifar import cifar_cfg
from .cifar_resnet import CifarResNet, projection

#: The survival probability of the last block (the first block's is 1).
LAST_SURVIVAL = 0.5


class _StochasticResidual(nn.Module):
    """``shortcut(x) + gate * branch(x)``: gate ~ Bernoulli(survival) per batch in training, ``survival`` in eval."""

    branch: nn.Module
    downsample: nn.Module

    def __init__(self, survival: float) -> None:
        super().__init__()
        if not 0.0 < survival <= 1.0:
            raise InvalidArgumentError(f"survival={survival!r}: a survival probability must be in (0, 1]")
        self.survival = survival

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.training:
            gate = torch.bernoulli(torch.full((), self.survival, device=x.device, dtype=out.dtype))
        else:
            gate = torch.tensor(self.survival, device=x.device, dtype=out.dtype)
        return self.downsample(x) + gate * out

    def extra_repr(self) -> str:
        return f"survival={self.survival:.4f}"


class StochasticDepthBasicBlock(_StochasticResidual):
    """Two 3x3 convolutions with biases and batch norm (ReLU between) as the droppable branch."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, survival: float = 1.0) -> None:
        super().__init__(survival)
        self.branch = nn.Sequential(
            nn.Conv2d(in_planes, planes, 3, stride, 1),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, 1, 1),
            nn.BatchNorm2d(planes),
        )
        self.downsample = projection(in_planes, planes, stride, bias=True)


class StochasticDepthBottleneck(_StochasticResidual):
    """1x1 / 3x3 (stride) / 1x1 to ``4 * planes`` without biases, with batch norm, as the droppable branch."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, survival: float = 1.0) -> None:
        super().__init__(survival)
        out_planes = planes * self.expansion
        self.branch = nn.Sequential(
            nn.Conv2d(in_planes, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, out_planes, 1, bias=False),
            nn.BatchNorm2d(out_planes),
        )
        self.downsample = projection(in_planes, out_planes, stride)


class StochasticDepthResNet(CifarResNet):
    """A :class:`CifarResNet` whose block ``i`` of ``n`` survives with ``1 - (1 - last_survival) * i / (n - 1)``."""

    def __init__(self, *args: Any, last_survival: float = LAST_SURVIVAL, **kwargs: Any) -> None:
        self.last_survival = last_survival
        super().__init__(*args, **kwargs)

    def make_block(
        self, block: type[nn.Module], in_planes: int, planes: int, stride: int, index: int, total: int
    ) -> nn.Module:
        survival = 1.0 - (1.0 - self.last_survival) * index / max(1, total - 1)
        return block(in_planes, planes, stride, survival=survival)


default_cfgs = generate_default_cfgs(
    {f"tract_stochasticdepth{depth}_cifar.untrained": cifar_cfg("conv1") for depth in (18, 34, 50, 101)}
)


def _create(variant: str, pretrained: bool, layers: tuple[int, ...], block: type[nn.Module], **kwargs: Any) -> Any:
    return build_model_with_cfg(
        StochasticDepthResNet, variant, pretrained, layers=layers, block=block, stem_bias=True, **kwargs
    )


@register_model
def tract_stochasticdepth18_cifar(pretrained: bool = False, **kwargs: Any) -> StochasticDepthResNet:
    """ResNet-18 with stochastic depth (survival 1 -> 0.5), CIFAR stem (the suite's stochasticdepth18)."""
    return _create("tract_stochasticdepth18_cifar", pretrained, (2, 2, 2, 2), StochasticDepthBasicBlock, **kwargs)


@register_model
def tract_stochasticdepth34_cifar(pretrained: bool = False, **kwargs: Any) -> StochasticDepthResNet:
    """ResNet-34 with stochastic depth (survival 1 -> 0.5), CIFAR stem (the suite's stochasticdepth34)."""
    return _create("tract_stochasticdepth34_cifar", pretrained, (3, 4, 6, 3), StochasticDepthBasicBlock, **kwargs)


@register_model
def tract_stochasticdepth50_cifar(pretrained: bool = False, **kwargs: Any) -> StochasticDepthResNet:
    """ResNet-50 with stochastic depth (survival 1 -> 0.5), CIFAR stem (the suite's stochasticdepth50)."""
    return _create("tract_stochasticdepth50_cifar", pretrained, (3, 4, 6, 3), StochasticDepthBottleneck, **kwargs)


@register_model
def tract_stochasticdepth101_cifar(pretrained: bool = False, **kwargs: Any) -> StochasticDepthResNet:
    """ResNet-101 with stochastic depth (survival 1 -> 0.5), CIFAR stem (the suite's stochasticdepth101)."""
    return _create("tract_stochasticdepth101_cifar", pretrained, (3, 4, 23, 3), StochasticDepthBottleneck, **kwargs)

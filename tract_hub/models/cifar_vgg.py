"""CIFAR VGGs with batch norm, registered as timm architectures.

The CIFAR-100 suite's vgg11_bn/13_bn/16_bn/19_bn in the form of its reference repository
(weiaicunzai/pytorch-cifar100): the VGG configurations A/B/D/E of 3x3 convolutions (with biases), batch norm and
ReLU, five 2x2 max-pools that bring 32x32 to 1x1, then a classifier of 512 -> 4096 -> 4096 -> classes with
dropout 0.5 after each hidden layer.

Example (built on the meta device: no memory, no initialization):
    >>> import torch, tract_hub.models, timm
    >>> with torch.device("meta"):
    ...     model = timm.create_model("tract_vgg11_bn_cifar")
    >>> sum(p.numel() for p in model.parameters()), model.pretrained_cfg["first_conv"]
    (28518244, 'features.0')
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ..errors import InvalidArgumentError
from ._cifar import CifarClassifier, cifar_cfg

#: Output channels of each 3x3 convolution per stage; a stage ends with a max-pool.
CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


class CifarVGG(CifarClassifier):
    """VGG with batch norm for 32x32 inputs; ``hidden`` is the width of the classifier's two hidden layers."""

    def __init__(
        self,
        config: str = "vgg16",
        num_classes: int = 100,
        in_chans: int = 3,
        hidden: int = 4096,
        drop_rate: float = 0.5,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        if config not in CONFIGS:
            raise InvalidArgumentError(f"config={config!r} is not one of {sorted(CONFIGS)}")
        layers: list[nn.Module] = []
        channels = in_chans
        for stage in CONFIGS[config]:
            for width in stage:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        pre_logits = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(drop_rate),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.init_head(
            channels,
            num_classes,
            drop_rate=drop_rate,
            global_pool=global_pool,
            pre_logits=pre_logits,
            hidden_size=hidden,
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


default_cfgs = generate_default_cfgs({f"tract_{name}_bn_cifar.untrained": cifar_cfg("features.0") for name in CONFIGS})


def _create(config: str, pretrained: bool, **kwargs: Any) -> CifarVGG:
    return build_model_with_cfg(CifarVGG, f"tract_{config}_bn_cifar", pretrained, config=config, **kwargs)


@register_model
def tract_vgg11_bn_cifar(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-11 with batch norm, CIFAR form (the suite's vgg11_bn)."""
    return _create("vgg11", pretrained, **kwargs)


@register_model
def tract_vgg13_bn_cifar(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-13 with batch norm, CIFAR form (the suite's vgg13_bn)."""
    return _create("vgg13", pretrained, **kwargs)


@register_model
def tract_vgg16_bn_cifar(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-16 with batch norm, CIFAR form (the suite's vgg16_bn)."""
    return _create("vgg16", pretrained, **kwargs)


@register_model
def tract_vgg19_bn_cifar(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-19 with batch norm, CIFAR form (the suite's vgg19_bn)."""
    return _create("vgg19", pretrained, **kwargs)

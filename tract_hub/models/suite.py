"""The 36 architectures of the paper's CIFAR-100 suite (its Table 1) and the tract_hub models that implement them.

The names are those of the suite's reference repository (weiaicunzai/pytorch-cifar100, ``python train.py -net
<name>``); each recipe ``recipes/cifar100_suite_<name>.yaml`` trains the timm architecture listed here.

Example:
    >>> import tract_hub.models, timm
    >>> len(CIFAR100_SUITE), CIFAR100_SUITE["wideresnet"]
    (36, 'tract_wideresnet40_10_cifar')
    >>> all(arch in timm.list_models("tract_*") for arch in CIFAR100_SUITE.values())
    True
"""

from __future__ import annotations

_PLAIN = (
    "mobilenet",
    "mobilenetv2",
    "squeezenet",
    "shufflenet",
    "shufflenetv2",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "densenet121",
    "densenet161",
    "densenet201",
    "googlenet",
    "inceptionv3",
    "inceptionv4",
    "inceptionresnetv2",
    "xception",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50",
    "resnext101",
    "resnext152",
    "seresnet18",
    "seresnet34",
    "seresnet50",
    "seresnet101",
    "seresnet152",
    "nasnet",
)

#: Suite name (the reference repository's) -> timm architecture registered by :mod:`tract_hub.models`.
CIFAR100_SUITE: dict[str, str] = {
    **{name: f"tract_{name}_cifar" for name in _PLAIN},
    "wideresnet": "tract_wideresnet40_10_cifar",
    **{f"stochasticdepth{depth}": f"tract_stochasticdepth{depth}_cifar" for depth in (18, 34, 50, 101)},
}

"""tract_hub's model family files, each registering its architectures with timm when imported.

Example:
    >>> "tract_nasnet_cifar" in tract_architectures()
    True
"""

import importlib
from types import ModuleType

#: The model family files (timm's layout: one file per family), each registering its architectures on import.
FAMILY_MODULES = (
    "cifar_densenet",
    "cifar_googlenet",
    "cifar_inception_v3",
    "cifar_inception_v4",
    "cifar_mobilenet",
    "cifar_mobilenetv2",
    "cifar_nasnet",
    "cifar_resnet",
    "cifar_resnext",
    "cifar_senet",
    "cifar_shufflenet",
    "cifar_shufflenetv2",
    "cifar_squeezenet",
    "cifar_stochastic_depth",
    "cifar_vgg",
    "cifar_wide_resnet",
    "cifar_xception",
)
FAMILIES: tuple[ModuleType, ...] = tuple(importlib.import_module(f"{__package__}.{name}") for name in FAMILY_MODULES)


def tract_architectures() -> frozenset[str]:
    """The timm architectures tract_hub registers (plain timm builds them only in a process that imported
    ``tract_hub.models``).

    Example:
        >>> "tract_nasnet_cifar" in tract_architectures(), "resnet18" in tract_architectures()
        (True, False)
    """
    return frozenset(name for family in FAMILIES for name in family.default_cfgs)

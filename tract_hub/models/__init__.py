"""Architectures by name (timm and torchvision only) and tract_hub's CIFAR models registered with timm.

Importing this package registers the CIFAR families with timm (one file per family, timm's layout): the CIFAR
ResNets of the paper's CIFAR-10/100 experiments and of the demo, and the 36 architectures of the paper's
CIFAR-100 suite (:data:`CIFAR100_SUITE`) in the form of that suite's reference repository.

Example:
    >>> import timm
    >>> from tract_hub.models import CIFAR100_SUITE, create_model
    >>> CIFAR100_SUITE["vgg16_bn"]
    'tract_vgg16_bn_cifar'
    >>> type(create_model("timm:tract_squeezenet_cifar")).__name__, timm.is_model("tract_squeezenet_cifar")
    ('CifarSqueezeNet', True)
"""

from .cifar_resnet import CifarResNet
from .factory import create_model, known_architectures, resolve_architecture
from .families import FAMILIES, FAMILY_MODULES, tract_architectures
from .suite import CIFAR100_SUITE

__all__ = [
    "CIFAR100_SUITE",
    "FAMILIES",
    "FAMILY_MODULES",
    "CifarResNet",
    "create_model",
    "known_architectures",
    "resolve_architecture",
    "tract_architectures",
]

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
from .families import (
    FAMILIES,
    cifar_densenet,
    cifar_googlenet,
    cifar_inception_v3,
    cifar_inception_v4,
    cifar_mobilenet,
    cifar_mobilenetv2,
    cifar_nasnet,
    cifar_resnet,
    cifar_resnext,
    cifar_senet,
    cifar_shufflenet,
    cifar_shufflenetv2,
    cifar_squeezenet,
    cifar_stochastic_depth,
    cifar_vgg,
    cifar_wide_resnet,
    cifar_xception,
    tract_architectures,
)
from .suite import CIFAR100_SUITE

__all__ = [
    "CIFAR100_SUITE",
    "FAMILIES",
    "CifarResNet",
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
    "create_model",
    "known_architectures",
    "resolve_architecture",
    "tract_architectures",
]

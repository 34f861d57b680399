"""Architectures by name (timm and torchvision only) and tract_hub's CIFAR ResNets registered with timm."""

from . import cifar_resnet
from .cifar_resnet import CifarResNet
from .factory import create_model, known_architectures, resolve_architecture

__all__ = ["CifarResNet", "cifar_resnet", "create_model", "known_architectures", "resolve_architecture"]

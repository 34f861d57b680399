"""The classifier head of a model: how many classes it predicts, and replacing it for a new data set.

timm models do this themselves (``num_classes``, ``reset_classifier``). torchvision models have no common
interface, so each classification family's head attribute is listed here; the head is the last ``nn.Linear``
(or 1x1 convolution, for SqueezeNet) inside that attribute.

Example:
    >>> import torchvision
    >>> from tract_hub.pretrained.heads import head_num_classes, replace_head
    >>> model = torchvision.models.resnet18(num_classes=10)
    >>> _ = replace_head(model, 3)
    >>> head_num_classes(model)
    3
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from ..errors import InvalidArgumentError

logger = logging.getLogger(__name__)

#: torchvision classification model class -> the attribute holding its classifier.
TORCHVISION_HEADS = {
    "AlexNet": "classifier",
    "ConvNeXt": "classifier",
    "DenseNet": "classifier",
    "EfficientNet": "classifier",
    "GoogLeNet": "fc",
    "Inception3": "fc",
    "MNASNet": "classifier",
    "MaxVit": "classifier",
    "MobileNetV2": "classifier",
    "MobileNetV3": "classifier",
    "MViT": "head",
    "QuantizableGoogLeNet": "fc",
    "QuantizableInception3": "fc",
    "QuantizableMobileNetV2": "classifier",
    "QuantizableMobileNetV3": "classifier",
    "QuantizableResNet": "fc",
    "QuantizableShuffleNetV2": "fc",
    "RegNet": "fc",
    "ResNet": "fc",
    "S3D": "classifier",
    "ShuffleNetV2": "fc",
    "SqueezeNet": "classifier",
    "SwinTransformer": "head",
    "SwinTransformer3d": "head",
    "VGG": "classifier",
    "VideoResNet": "fc",
    "VisionTransformer": "heads",
}

_HEAD_TYPES = (nn.Linear, nn.Conv2d, nn.Conv3d)


def is_timm_model(model: nn.Module) -> bool:
    """Whether ``model`` was built by timm (it carries a ``pretrained_cfg`` and ``reset_classifier``)."""
    return isinstance(getattr(model, "pretrained_cfg", None), dict) and callable(
        getattr(model, "reset_classifier", None)
    )


def find_torchvision_head(model: nn.Module) -> tuple[str, nn.Module] | None:
    """(qualified name, module) of a torchvision classifier's final layer, or None for other models."""
    attribute = TORCHVISION_HEADS.get(type(model).__name__)
    container = getattr(model, attribute, None) if attribute else None
    if not isinstance(container, nn.Module):
        return None
    if isinstance(container, _HEAD_TYPES):
        return attribute, container
    found = None
    for name, module in container.named_modules():
        if isinstance(module, _HEAD_TYPES):
            found = (f"{attribute}.{name}", module)
    return found


def _out_features(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def head_num_classes(model: nn.Module) -> int | None:
    """How many classes ``model`` predicts (timm's ``num_classes`` or the torchvision head), None if unknown."""
    if is_timm_model(model):
        return int(model.num_classes)
    head = find_torchvision_head(model)
    return _out_features(head[1]) if head else None


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not a POSIX system
        return None


def _head_features(model: nn.Module) -> tuple[int, torch.dtype] | None:
    """(input features, dtype) of the current head, when it is known."""
    head = find_torchvision_head(model)
    if head is None and is_timm_model(model):
        classifier = getattr(model, "get_classifier", None)
        module = classifier() if callable(classifier) else None
        head = ("", module) if isinstance(module, _HEAD_TYPES) else None
    if head is None:
        return None
    layer = head[1]
    features = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
    return features, layer.weight.dtype


def check_head_size(model: nn.Module, num_classes: int) -> None:
    """Refuse a head that could not be allocated: more bytes than the machine's memory (``num_classes=10**12``)."""
    known = _head_features(model)
    memory = _physical_memory()
    if known is None or memory is None:
        return
    features, dtype = known
    needed = (features + 1) * num_classes * torch.empty((), dtype=dtype).element_size()
    if needed > memory:
        raise InvalidArgumentError(
            f"num_classes={num_classes:,}: a {features}-feature head with that many classes needs "
            f"{needed / 2**30:,.1f} GiB, more than this machine's {memory / 2**30:,.1f} GiB of memory; give the "
            "number of classes of your data set"
        )


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the classifier of ``model`` in place by a freshly initialized one with ``num_classes`` outputs."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidArgumentError(f"num_classes={num_classes!r} is not a positive integer")
    check_head_size(model, num_classes)
    try:
        return _replace_head(model, num_classes)
    except (RuntimeError, MemoryError) as error:  # the allocator's refusal
        raise InvalidArgumentError(
            f"num_classes={num_classes:,}: the new head cannot be allocated ({type(error).__name__}: {error})"
        ) from error


def _replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    if is_timm_model(model):
        model.reset_classifier(num_classes)
        return model
    head = find_torchvision_head(model)
    if head is None:
        raise InvalidArgumentError(
            f"num_classes={num_classes}: tract_hub does not know the classifier head of {type(model).__name__} "
            f"(known torchvision classifiers: {', '.join(sorted(TORCHVISION_HEADS))}); load without num_classes= "
            "and replace the head yourself"
        )
    name, old = head
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = type(old)(
            old.in_channels, num_classes, old.kernel_size, old.stride, old.padding, bias=old.bias is not None
        )
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    logger.info(
        "replaced the head %r of %s: %d -> %d classes", name, type(model).__name__, _out_features(old), num_classes
    )
    return model

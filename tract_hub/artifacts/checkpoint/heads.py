"""The classifier head of a model: how many classes it predicts, and replacing it for a new data set.

timm models do this themselves (``num_classes``, ``reset_classifier``). torchvision models have no common
interface, so each classification family's head attribute is listed here; the head is the last ``nn.Linear``
(or 1x1 convolution, for SqueezeNet) inside that attribute.

Example:
    >>> import torchvision
    >>> from tract_hub.artifacts.checkpoint.heads import head_num_classes, replace_head
    >>> model = torchvision.models.resnet18(num_classes=10)
    >>> _ = replace_head(model, 3)
    >>> head_num_classes(model)
    3
"""

from __future__ import annotations

import logging

from torch import nn

from ...errors import InvalidArgumentError

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


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the classifier of ``model`` in place by a freshly initialized one with ``num_classes`` outputs."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidArgumentError(f"num_classes={num_classes!r} is not a positive integer")
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

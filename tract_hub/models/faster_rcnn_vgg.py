"""Faster R-CNN on VGG features (the paper's VOC2007 experiment), assembled from torchvision parts.

The backbone is ``vgg.features`` without its last max-pool (stride 16, 512 channels), as in the original
Faster R-CNN; the box head is torchvision's two-layer MLP over RoI-aligned features. torchvision has no VGG
Faster R-CNN builder, so the architecture is named by its backbone (``torchvision:vgg16``) and built here, as a
:class:`VggFasterRCNN`: the class the registry's built-in rule ``tract_hub.faster_rcnn_vgg`` names, so that its
first layer (the backbone's first convolution) is located like any other family's.

Example:
    >>> import tract_hub
    >>> detector = build_faster_rcnn_vgg(
    ...     "torchvision:vgg11", num_classes=21, frozen_layers=0, min_size=64, max_size=96,
    ...     anchor_sizes=(32, 64), aspect_ratios=(1.0,), roi_output_size=7)
    >>> type(detector).__name__, detector.backbone[0]
    ('VggFasterRCNN', Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)))
    >>> [(layer.name, layer.rule) for layer in tract_hub.locate(detector)]
    [('backbone.0', 'tract_hub.faster_rcnn_vgg')]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from .factory import create_model

logger = logging.getLogger(__name__)


class VggFasterRCNN(FasterRCNN):
    """torchvision's ``FasterRCNN`` whose backbone is a VGG's ``features`` (an ``nn.Sequential``); the same
    modules, state-dict keys and forward, under a class of its own that the registry's rule can name."""


def _vgg_features(architecture: str, pretrained: bool) -> nn.Sequential:
    """``vgg.features`` of the architecture. Without pretrained weights the VGG is built on the meta device and
    only its features are materialized (initialized as torchvision initializes VGG), which spares the
    120-million-parameter classifier that the detector does not use."""
    if pretrained:
        return create_model(architecture, pretrained=True).features
    with torch.device("meta"):
        features = create_model(architecture).features
    features = features.to_empty(device="cpu")
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.reset_running_stats()
    return features


def build_faster_rcnn_vgg(
    architecture: str,
    num_classes: int,
    *,
    frozen_layers: int,
    min_size: int,
    max_size: int,
    anchor_sizes: Sequence[int],
    aspect_ratios: Sequence[float],
    roi_output_size: int,
    pretrained: bool = False,
) -> VggFasterRCNN:
    """A :class:`VggFasterRCNN` on the features of the VGG ``architecture`` (``torchvision:vgg16``, ...).

    The keywords are a recipe's ``model.detection`` (:class:`tract_hub.training.recipe.DetectionConfig`, where
    their defaults and units are): the leading ``frozen_layers`` modules of ``vgg.features`` are frozen, images
    are resized to ``min_size``..``max_size``, one feature map carries the anchors, and the RoI pooling is
    ``roi_output_size`` square. ``pretrained`` loads the VGG's ImageNet weights (needs the network).
    """
    backbone = nn.Sequential(*list(_vgg_features(architecture, pretrained))[:-1])
    backbone.out_channels = 512
    for index, layer in enumerate(backbone):
        if index < frozen_layers:
            layer.requires_grad_(False)
    if frozen_layers:
        logger.info("detector: the first %d modules of %s.features are frozen", frozen_layers, architecture)
    anchors = AnchorGenerator(sizes=(tuple(anchor_sizes),), aspect_ratios=(tuple(aspect_ratios),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=roi_output_size, sampling_ratio=2)
    return VggFasterRCNN(
        backbone,
        num_classes=num_classes,
        rpn_anchor_generator=anchors,
        box_roi_pool=pooler,
        min_size=min_size,
        max_size=max_size,
    )

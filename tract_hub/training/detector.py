"""Faster R-CNN with a VGG backbone (the paper's VOC2007 experiment), assembled from torchvision parts.

The backbone is ``vgg.features`` without its last max-pool (stride 16, 512 channels), as in the original
Faster R-CNN; the box head is torchvision's two-layer MLP over 7x7 RoI-aligned features. torchvision has no
VGG Faster R-CNN builder, so the architecture is named by its backbone (``torchvision:vgg16``) and this module.

Example:
    >>> from tract_hub.training.recipe import DetectionConfig
    >>> detector = build_faster_rcnn("torchvision:vgg11", DetectionConfig(min_size=64, max_size=96), num_classes=21)
    >>> type(detector).__name__, detector.backbone[0]
    ('FasterRCNN', Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)))
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..models import create_model
from .recipe import DetectionConfig

logger = logging.getLogger(__name__)

#: The first layer of the detector built here (the backbone's first convolution).
FIRST_LAYER = "backbone.0"


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


def build_faster_rcnn(
    architecture: str, config: DetectionConfig, num_classes: int, *, pretrained: bool = False
) -> nn.Module:
    """A torchvision ``FasterRCNN`` on the features of the VGG ``architecture``."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    backbone = nn.Sequential(*list(_vgg_features(architecture, pretrained))[:-1])
    backbone.out_channels = 512
    for index, layer in enumerate(backbone):
        if index < config.frozen_layers:
            layer.requires_grad_(False)
    if config.frozen_layers:
        logger.info("detector: the first %d modules of %s.features are frozen", config.frozen_layers, architecture)
    anchors = AnchorGenerator(sizes=(tuple(config.anchor_sizes),), aspect_ratios=(tuple(config.aspect_ratios),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=config.roi_output_size, sampling_ratio=2)
    return FasterRCNN(
        backbone,
        num_classes=num_classes,
        rpn_anchor_generator=anchors,
        box_roi_pool=pooler,
        min_size=config.min_size,
        max_size=config.max_size,
    )

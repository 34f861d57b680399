"""Detection models: the project's Faster R-CNN on VGG features (:mod:`tract_hub.models.faster_rcnn_vgg`), the
same architecture hand-built from torchvision parts, and torchvision's Faster R-CNN with the backbone frozen the
way torchvision freezes it for pretrained weights. The first layer is located (by the built-in rule for the
project's detector and torchvision's, by tracing for the hand-built model: no rule knows it), unfrozen by the
patch (with a warning and ``unfrozen=True``), added to an optimizer built before the patch, and its gradient
follows the formula."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

import tract_hub
from tests.registry.gradient_reference import LayerCallRecorder
from tract_hub.models.faster_rcnn_vgg import build_faster_rcnn_vgg

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"min_size": 64, "max_size": 64, "rpn_post_nms_top_n_test": 50, "box_batch_size_per_image": 32}


def faster_rcnn_vgg16() -> FasterRCNN:
    """Faster R-CNN on VGG-16's convolutions (no last max-pool: stride 16), as in torchvision's detection
    tutorial for a custom backbone, with VGG's first block frozen like a pretrained backbone."""
    backbone = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])[:-1]
    backbone.out_channels = 512
    for parameter in backbone[:4].parameters():  # conv1_1 and conv1_2
        parameter.requires_grad_(False)
    anchors = AnchorGenerator(sizes=((32, 64, 128),), aspect_ratios=((0.5, 1.0, 2.0),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    return FasterRCNN(backbone, num_classes=21, rpn_anchor_generator=anchors, box_roi_pool=pooler, **SMALL)


def faster_rcnn_vgg11_project() -> FasterRCNN:
    """The project's detector (what a recipe's ``model.detector: faster_rcnn`` builds), VGG's first block frozen."""
    return build_faster_rcnn_vgg(
        "torchvision:vgg11",
        num_classes=21,
        frozen_layers=3,  # conv1_1, its ReLU and the max-pool
        min_size=64,
        max_size=64,
        anchor_sizes=(32, 64, 128),
        aspect_ratios=(0.5, 1.0, 2.0),
        roi_output_size=7,
    )


def faster_rcnn_resnet_frozen() -> FasterRCNN:
    """torchvision's own FPN extractor with ``trainable_layers=3`` (what ``fasterrcnn_resnet50_fpn`` does with a
    pretrained backbone: conv1 and layer1 frozen, FrozenBatchNorm2d), on a ResNet-18 without weights."""
    resnet = torchvision.models.resnet18(norm_layer=FrozenBatchNorm2d)
    return FasterRCNN(_resnet_fpn_extractor(resnet, trainable_layers=3), num_classes=3, **SMALL)


def batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 48)]
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[10.0, 8.0, 30.0, 44.0]]), "labels": torch.tensor([2])},
    ]
    return images, targets


CASES = [
    ("vgg11-project", faster_rcnn_vgg11_project, "backbone.0", "tract_hub.faster_rcnn_vgg"),
    ("vgg16-hand-built", faster_rcnn_vgg16, "backbone.0", "trace"),
    ("torchvision-resnet-fpn", faster_rcnn_resnet_frozen, "backbone.body.conv1", "torchvision.detection.resnet"),
]


@pytest.mark.parametrize(("case", "factory", "first", "rule"), CASES, ids=[c[0] for c in CASES])
def test_a_frozen_detection_stem_is_located_unfrozen_and_trained_with_tract(case, factory, first, rule, caplog):
    torch.manual_seed(0)
    model = factory()
    layer = model.get_submodule(first)
    assert not layer.weight.requires_grad
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)

    located = tract_hub.locate(model, verify=True)
    assert [(item.name, item.rule) for item in located] == [(first, rule)]
    assert located.disagreement is None and located.trace.device == "cpu"  # post-processing cannot run on meta

    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        tract_hub.patch(model, 0.1, optimizer=optimizer)
    assert "was frozen" in caplog.text and "optimizer" in caplog.text
    (patched,) = tract_hub.patched_layers(model)
    assert (patched.name, patched.unfrozen) == (first, True) and layer.weight.requires_grad
    assert any(p is layer.weight for group in optimizer.param_groups for p in group["params"])

    model.train()
    with LayerCallRecorder(model, [first]) as recorder:
        losses = model(*batch())
        sum(losses.values()).backward()
    expected = recorder.expected_grad(first, 0.1)
    torch.testing.assert_close(layer.weight.grad.double(), expected, rtol=1e-3, atol=1e-4 * expected.abs().max())

    before = layer.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(layer.weight, before)
    tract_hub.unpatch(model)
    assert not layer.weight.requires_grad

"""Every built-in torchvision rule, on one builder it covers: the rule answers, and the trace agrees with it.

The trace (tract_hub.registry.trace) is the independent check: it follows the input through one forward pass
and does not read the rules. Detection models are built with small ``min_size``/``max_size`` so that their
CPU trace (they cannot run on the meta device: ``nonzero`` in post-processing) stays fast.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torchvision

from tract_hub.registry import list_rules, locate

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_DETECTION = {"min_size": 64, "max_size": 64, "num_classes": 2}

# rule name -> (builder, constructor keyword arguments)
EXAMPLES = {
    "torchvision.alexnet": ("alexnet", {}),
    "torchvision.vgg": ("vgg11", {}),
    "torchvision.squeezenet": ("squeezenet1_1", {}),
    "torchvision.resnet": ("quantized_resnet18", {}),  # a subclass of ResNet
    "torchvision.densenet": ("densenet121", {}),
    "torchvision.googlenet": ("googlenet", {"init_weights": False}),
    "torchvision.inception_v3": ("inception_v3", {"init_weights": False}),
    "torchvision.mobilenet_v2": ("mobilenet_v2", {}),
    "torchvision.mobilenet_v3": ("mobilenet_v3_small", {}),
    "torchvision.efficientnet": ("efficientnet_b0", {}),
    "torchvision.convnext": ("convnext_tiny", {}),
    "torchvision.swin": ("swin_v2_t", {}),
    "torchvision.maxvit": ("maxvit_t", {}),
    "torchvision.mnasnet": ("mnasnet0_5", {}),
    "torchvision.regnet": ("regnet_x_400mf", {}),
    "torchvision.shufflenet_v2": ("shufflenet_v2_x0_5", {}),
    "torchvision.vit": ("vit_b_32", {}),
    "torchvision.video_resnet": ("r2plus1d_18", {}),
    "torchvision.mvit": ("mvit_v2_s", {}),
    "torchvision.s3d": ("s3d", {}),
    "torchvision.swin3d": ("swin3d_t", {}),
    "torchvision.raft": ("raft_small", {}),
    "torchvision.detection.resnet": ("retinanet_resnet50_fpn", SMALL_DETECTION),
    "torchvision.detection.mobilenet": ("fasterrcnn_mobilenet_v3_large_320_fpn", SMALL_DETECTION),
    "torchvision.ssd.vgg": ("ssd300_vgg16", {"num_classes": 2}),
    "torchvision.ssdlite": ("ssdlite320_mobilenet_v3_large", {"num_classes": 2}),
    "torchvision.segmentation.resnet": ("fcn_resnet50", {}),
    "torchvision.segmentation.mobilenet": ("lraspp_mobilenet_v3_large", {}),
}


def build(name: str, kwargs: dict) -> torch.nn.Module:
    """On the meta device where the constructor allows it; no weights are downloaded."""
    builder = torchvision.models.get_model_builder(name)
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs = {"weights_backbone": None, **kwargs}
    try:
        with torch.device("meta"):
            return builder(**kwargs)
    except NotImplementedError:  # RegNet computes its widths with tensors
        return builder(**kwargs)


def test_every_builtin_torchvision_rule_has_an_example():
    rules = {rule.name for rule in list_rules() if rule.builtin and rule.name.startswith("torchvision.")}
    assert rules == set(EXAMPLES)


@pytest.mark.slow  # a sweep over real torchvision builders
@pytest.mark.parametrize(("rule", "example"), sorted(EXAMPLES.items()), ids=sorted(EXAMPLES))
def test_the_rule_answers_and_the_trace_agrees(rule, example):
    name, kwargs = example
    located = locate(build(name, kwargs), verify=True)
    assert {layer.rule for layer in located} == {rule}
    assert located.disagreement is None, located.disagreement
    assert sorted(located.names) == sorted(located.traced)

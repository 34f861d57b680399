"""A representative sample of timm architectures, built on the meta device: ``locate`` against timm's own
``pretrained_cfg["first_conv"]`` (an independent fact) and against the trace, then ``patch``.

The sample covers every first-layer class timm uses (Conv2d, Conv2dSame, StdConv2d, StdConv2dSame,
ScaledStdConv2d, ScaledStdConv2dSame, Linear) and every stem shape (kernel x stride: the 25 the coverage sweep
found, from 3x3/1 to 32x32/32, and Linear patch embeddings), the parallel-stem families (RepVGG, MobileOne,
FastViT, CrossViT's resized copy), inputs rearranged before the first layer (space-to-depth, focus slicing, DCT,
patch reshaping), and csatv2, whose ``first_conv`` is empty (a built-in rule). Where several architectures
share a feature, the smallest was picked. Every architecture is checked by ``benchmarks/coverage_sweep.py``.
"""

from __future__ import annotations

import pytest
import timm
import torch

import tract_hub
import tract_hub.models  # registers tract_hub's CIFAR ResNets with timm
from tract_hub.core import SUPPORTED_LAYER_TYPES

SAMPLE = [
    "resnet18",  # Conv2d 7x7/2
    "tract_resnet8_cifar",  # tract_hub's own CIFAR stem, 3x3/1
    "test_vit",  # patchify Conv2d
    "convnext_atto",  # 4x4/4 patchify
    "tf_mobilenetv3_small_minimal_100",  # Conv2dSame (TF "SAME" padding inside the layer)
    "resnetv2_50x1_bit",  # StdConv2d: the weight is standardized on the fly
    "test_nfnet",  # ScaledStdConv2d
    "dm_nfnet_f0",  # ScaledStdConv2dSame
    "gemma4_vit_167m",  # Linear on reshaped patches
    "repvgg_a0",  # parallel 3x3 and 1x1 stem branches
    "mobileone_s0",  # parallel over-parameterized branches
    "fastvit_t8",  # parallel branches, nested stem
    "crossvit_tiny_240",  # two patch embeddings, one on a resized copy
    "csatv2",  # empty first_conv: three 1x1 convs behind a fixed DCT (a built-in rule)
    "tresnet_m",  # space-to-depth before the first conv
    "cs3darknet_focus_s",  # focus: pixels sliced into channels
    "inception_v3",  # 299 input
    "vit_tiny_r_s16_p8_224",  # StdConv2dSame (hybrid ResNet stem)
    "eva02_tiny_patch14_224",  # 14x14/14
    "pit_ti_224",  # 16x16/8 (overlapping patches)
    "pit_b_224",  # 14x14/7
    "mixer_s32_224",  # 32x32/32
    "vit_small_patch8_224",  # 8x8/8
    "convmixer_768_32",  # 7x7/7
    "pvt_v2_b0",  # 7x7/4
    "edgenext_small_rw",  # 9x9/4
    "iformer_t",  # 5x5/2
    "dla46x_c",  # 7x7/1
]


def _first_conv(model: torch.nn.Module) -> list[str]:
    value = model.pretrained_cfg.get("first_conv")
    return [value] if isinstance(value, str) else list(value or [])


@pytest.mark.slow  # a sweep over real timm architectures
@pytest.mark.parametrize("arch", SAMPLE)
def test_locate_agrees_with_first_conv_and_the_trace_and_patch_follows(arch):
    with torch.device("meta"):
        model = timm.create_model(arch)
    located = tract_hub.locate(model, verify=True)
    assert located.disagreement is None, located.disagreement
    assert sorted(located.names) == sorted(located.traced)
    first_conv = _first_conv(model)
    builtin = next((rule.name for rule in tract_hub.list_rules() if rule.builtin and rule.matches(model)), None)
    expected_rule = builtin or ("timm.first_conv" if first_conv else f"timm.{arch}")  # rules with a row mask
    if first_conv:
        assert sorted(located.names) == sorted(first_conv)
    assert {layer.rule for layer in located} == {expected_rule}
    assert all(isinstance(layer.module, SUPPORTED_LAYER_TYPES) for layer in located)

    keys = list(model.state_dict())
    tract_hub.patch(model)
    assert [layer.name for layer in tract_hub.patched_layers(model)] == located.names
    assert list(model.state_dict()) == keys

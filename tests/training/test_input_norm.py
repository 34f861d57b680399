"""The ViT ablations: patch-wise standardization and DualPatchNorm of the input patches."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F

import tract_hub
from tract_hub.errors import RecipeError
from tract_hub.training.input_norm import PatchInputNorm, apply_input_norm


def _vit() -> torch.nn.Module:
    return timm.create_model("vit_tiny_patch16_224", img_size=16, patch_size=4, depth=1, num_classes=3)


def test_patch_standardize_normalizes_each_patch() -> None:
    proj = torch.nn.Conv2d(3, 8, 4, stride=4)
    module = PatchInputNorm(proj, affine=False)
    x = torch.randn(2, 3, 8, 8) * 5 + 3
    patches = F.unfold(x, 4, stride=4).transpose(1, 2)  # B x L x 48
    standardized = (patches - patches.mean(-1, keepdim=True)) / torch.sqrt(
        patches.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    expected = F.conv2d(F.fold(standardized.transpose(1, 2), (8, 8), 4, stride=4), proj.weight, proj.bias, stride=4)
    torch.testing.assert_close(module(x), expected)


@pytest.mark.parametrize("kind", ["patch_standardize", "dual_patch_norm"])
def test_vit_variants_train_and_take_tract(kind: str) -> None:
    model = apply_input_norm(_vit(), kind)
    assert isinstance(model.patch_embed.proj, PatchInputNorm)
    assert isinstance(model.patch_embed.norm, torch.nn.LayerNorm) == (kind == "dual_patch_norm")
    tract_hub.patch(model, 0.1, target="patch_embed.proj.proj")
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    assert model.patch_embed.proj.proj.weight.grad is not None


def test_input_norm_needs_a_vit() -> None:
    with pytest.raises(RecipeError, match="needs a ViT"):
        apply_input_norm(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3)), "patch_standardize")

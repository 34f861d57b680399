"""Padding rows that a model marks invalid do not count in TrAct's covariance and row count (timm's NaFlex ViTs
and Gemma 4 vision encoders, through the registry's ``row_mask``).

The check is timm's own ``test_naflexvit_sapiens2_conversion`` with both models patched: the same images through
the convolutional patch embedding and, as NaFlex patch sequences with padding, through the Linear one must give
the same first-layer gradient (TrAct's included)."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models.naflexvit import batch_patchify, checkpoint_filter_fn

import tract_hub
from tests.reference import relative_error

SAPIENS2 = dict(img_size=(32, 48), patch_size=8, embed_dim=32, depth=2, num_heads=4, num_kv_heads=4, num_classes=0)


def sapiens2_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    eva = timm.create_model("vit_base_patch16_sapiens2", use_naflex=False, **SAPIENS2)
    naflex = timm.create_model("vit_base_patch16_sapiens2", use_naflex=True, **SAPIENS2)
    naflex.load_state_dict(checkpoint_filter_fn(eva.state_dict(), naflex), strict=True)
    return eva.double().eval(), naflex.double().eval()  # eval: no train-time coordinate jitter to match


def padded_patches(images: torch.Tensor, padding: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    patches, grid = batch_patchify(images, (8, 8))
    coord = torch.stack(torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij"), dim=-1)
    coord = coord.reshape(1, -1, 2).expand(images.shape[0], -1, -1)
    valid = torch.ones(patches.shape[:2], dtype=torch.bool)
    pad = torch.nn.functional.pad
    return pad(patches, (0, 0, 0, padding)), pad(coord, (0, 0, 0, padding)), pad(valid, (0, padding))


def first_layer_grads(padding: int, naflex_target: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(conv embedding's weight gradient in the Linear layout, NaFlex Linear embedding's) after one backward."""
    eva, naflex = sapiens2_pair()
    tract_hub.patch(eva, 0.1)
    tract_hub.patch(naflex, 0.1, target=naflex_target)
    images = torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    patches, coord, valid = padded_patches(images, padding)
    reference = eva.forward_features(images)
    actual = naflex.forward_features(patches, patch_coord=coord, patch_valid=valid)["patches"][:, : reference.shape[1]]
    weights = torch.randn(reference.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (reference * weights).sum().backward()
    (actual * weights).sum().backward()
    expected = checkpoint_filter_fn({name: p.grad for name, p in eva.named_parameters()}, naflex)
    return expected["embeds.proj.weight"], naflex.embeds.proj.weight.grad


def test_the_registry_names_the_mask() -> None:
    _, naflex = sapiens2_pair()
    (layer,) = tract_hub.locate(naflex)
    assert (layer.name, layer.rule, layer.row_mask) == ("embeds.proj", "timm.naflexvit", ("embeds", "patch_valid"))


@pytest.mark.parametrize("padding", [0, 3, 24])
def test_padding_does_not_change_the_tract_gradient(padding: int) -> None:
    expected, actual = first_layer_grads(padding)
    assert relative_error(actual, expected) < 1e-10


def test_without_the_mask_padding_would_change_it() -> None:
    """Named by hand, the layer gets no mask: the 24 padding rows raise N (the failure the rule prevents)."""
    expected, actual = first_layer_grads(24, naflex_target="embeds.proj")
    assert relative_error(actual, expected) > 1e-2


def test_a_mask_inside_a_dict_input_is_read() -> None:
    """Gemma 4's patch embedding takes ``{"patches", "patch_coord", "patch_valid"}``."""
    model = timm.create_model(
        "gemma4_vit_167m_enc",
        embed_dim=32,
        depth=1,
        num_heads=2,
        head_dim=16,
        intermediate_size=32,
        position_embedding_size=16,
        global_pool="",
    ).double()
    (layer,) = tract_hub.locate(model)
    assert layer.row_mask == ("patch_embed", "patch_valid")
    tract_hub.patch(model, 0.1)
    n, pad = 16, 8
    patches = torch.zeros(1, n + pad, 16 * 16 * 3, dtype=torch.float64)
    patches[:, :n] = torch.randn(1, n, 16 * 16 * 3, dtype=torch.float64)
    coord = torch.zeros(1, n + pad, 2, dtype=torch.long)
    coord[:, :n, 0], coord[:, :n, 1] = torch.arange(n) // 4, torch.arange(n) % 4
    valid = torch.zeros(1, n + pad, dtype=torch.bool)
    valid[:, :n] = True
    seen = []
    model.patch_embed.input_proj.register_forward_pre_hook(
        lambda module, args: seen.append(module.forward.row_masks.current)
    )
    out = model.forward_features({"patches": patches, "patch_coord": coord, "patch_valid": valid})
    out[:, :n].sum().backward()
    assert seen and torch.equal(seen[0], valid)
    assert torch.isfinite(model.patch_embed.input_proj.weight.grad).all()


def test_unpatch_removes_the_mask_hooks() -> None:
    _, naflex = sapiens2_pair()
    before = (dict(naflex.embeds._forward_pre_hooks), dict(naflex.embeds._forward_hooks))
    tract_hub.unpatch(tract_hub.patch(naflex))
    assert (dict(naflex.embeds._forward_pre_hooks), dict(naflex.embeds._forward_hooks)) == before


def interpolating_naflexvit() -> torch.nn.Module:
    from timm.models.naflexvit import NaFlexVit, NaFlexVitCfg

    torch.manual_seed(0)
    config = NaFlexVitCfg(patch_size=16, embed_dim=32, depth=1, num_heads=2, enable_patch_interpolator=True)
    return tract_hub.patch(NaFlexVit(cfg=config, num_classes=3), 0.1)


def test_a_forward_that_bypasses_the_patched_layer_is_refused_in_training() -> None:
    """timm's NaFlex patch interpolator resamples proj.weight for patches of another size and calls F.linear
    itself: TrAct cannot apply there, so a training forward says so instead of giving the plain gradient."""
    model = interpolating_naflexvit()
    patches = torch.randn(2, 6, 8, 8, 3)  # 8x8 patches for a 16x16 embedding: the interpolator's path
    coord = torch.stack(torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij"), -1).reshape(1, 6, 2)
    batch = {"patches": patches, "patch_coord": coord.expand(2, -1, -1), "patch_valid": torch.ones(2, 6).bool()}
    with pytest.raises(tract_hub.errors.UnsupportedLayerError, match="did not call the patched layer"):
        model(batch)
    with torch.no_grad():  # evaluation: the forward is the same with or without TrAct
        assert model(batch).shape == (2, 3)
    model.requires_grad_(False)  # frozen: no weight gradient to change
    assert model(batch).shape == (2, 3)


def test_the_model_s_own_patch_size_still_trains_with_the_interpolator_enabled() -> None:
    model = interpolating_naflexvit()
    model(torch.randn(2, 3, 32, 48)).sum().backward()
    assert model.embeds.proj.weight.grad is not None
    assert model.embeds.proj.forward.state.accumulation is not None  # TrAct's backward ran


@pytest.mark.slow
def test_the_refusal_holds_under_torch_compile() -> None:
    model = interpolating_naflexvit()
    compiled = torch.compile(model, backend="aot_eager")
    compiled(torch.randn(2, 3, 32, 48)).sum().backward()  # the model's own patch size: trains
    coord = torch.stack(torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij"), -1).reshape(1, 6, 2)
    batch = {"patches": torch.randn(2, 6, 8, 8, 3), "patch_coord": coord.expand(2, -1, -1)}
    batch["patch_valid"] = torch.ones(2, 6, dtype=torch.bool)
    with pytest.raises(tract_hub.errors.UnsupportedLayerError, match="did not call the patched layer"):
        compiled(batch)

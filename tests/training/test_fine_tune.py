"""Fine-tuning recipes: model.init from a run directory (new head, resampled ViT position embedding) or a Hub
checkpoint directory (tract_hub.from_pretrained)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

import tract_hub
from tract_hub.errors import RecipeError
from tract_hub.training import train
from tract_hub.training.demo_recipe import demo_recipe
from tract_hub.training.modeling import build_model

from .builders import quick_recipe


def fake_run(root: Path, model: torch.nn.Module, architecture: str, kwargs: dict) -> Path:
    """A run directory with a best checkpoint and a summary, as the trainer writes them."""
    best = root / "checkpoints" / "best"
    best.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(best / "model.safetensors"))
    summary = {"format_version": 1, "model": {"architecture": architecture, "kwargs": kwargs}, "lam": 0.1}
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def test_init_from_a_run_directory_replaces_the_head(tmp_path: Path) -> None:
    kwargs = {"in_chans": 1, "num_classes": 7, "width": 4}
    source = timm.create_model("tract_resnet8_cifar", **kwargs)
    run = fake_run(tmp_path / "run", source, "timm:tract_resnet8_cifar", kwargs)
    recipe = demo_recipe(["model.architecture=null", f"model.init={run}"])
    built = build_model(recipe, num_classes=10)
    assert built.architecture == "timm:tract_resnet8_cifar" and built.kwargs["num_classes"] == 10
    assert built.model.fc.out_features == 10
    assert torch.equal(built.model.conv1.weight, source.conv1.weight)


def test_init_from_a_run_directory_resamples_a_vit_position_embedding(tmp_path: Path) -> None:
    kwargs = {"img_size": 16, "patch_size": 4, "depth": 1, "num_classes": 10}
    source = timm.create_model("vit_tiny_patch16_224", **kwargs)
    run = fake_run(tmp_path / "vit", source, "timm:vit_tiny_patch16_224", kwargs)
    recipe = demo_recipe(["model.architecture=null", f"model.init={run}", "model.kwargs={img_size: 32}"])
    built = build_model(recipe, num_classes=10)
    assert built.kwargs["img_size"] == 32 and built.model.pos_embed.shape[1] == 1 + 8 * 8
    assert torch.equal(built.model.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert built.model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_init_from_a_hub_checkpoint_trains(tmp_path: Path) -> None:
    model = timm.create_model("tract_resnet8_cifar", in_chans=1, num_classes=10, width=4)
    hub_dir = tract_hub.save_pretrained(model, tmp_path / "hub", metadata={"lam": 0.1, "first_layers": ["conv1"]})
    recipe = quick_recipe("model.architecture=null", "model.kwargs={}", f"model.init={hub_dir}", "train.epochs=1")
    result = train(recipe, tmp_path / "run", device="cpu")
    assert result.summary.model.architecture == "timm:tract_resnet8_cifar"
    assert result.summary.first_layers == ("conv1",) and tract_hub.is_patched(result.model)


def test_hub_init_with_kwargs_is_refused(tmp_path: Path) -> None:
    recipe = demo_recipe(["model.architecture=null", "model.init=org/name"])
    with pytest.raises(RecipeError, match=r"remove model\.kwargs"):
        build_model(recipe, num_classes=10)

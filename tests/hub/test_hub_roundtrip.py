"""save_pretrained -> from_pretrained through a directory: same weights, same outputs bit for bit, timm's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import tract_hub
from tract_hub.artifacts.files import sha256_file
from tract_hub.artifacts.metadata import METADATA_KEY
from tract_hub.artifacts.publish import WEIGHT_SOURCE_KEYS
from tract_hub.models import create_model

# (architecture, constructor kwargs, input shape)
MODELS = [
    ("timm:test_resnet", {"num_classes": 3}, (2, 3, 32, 32)),
    ("timm:test_vit", {"num_classes": 3, "img_size": 32}, (2, 3, 32, 32)),
    ("timm:tract_resnet8_cifar", {"num_classes": 10, "in_chans": 1}, (2, 1, 16, 16)),
    ("torchvision:resnet18", {"num_classes": 3}, (1, 3, 32, 32)),
    ("torchvision:squeezenet1_1", {"num_classes": 5}, (2, 3, 64, 64)),
]
TIMM_CONFIGS = [
    ("timm:test_resnet", {"num_classes": 3}),
    ("timm:test_vit", {"num_classes": 3, "img_size": 32}),
    ("timm:resnet18", {"num_classes": 3}),
    ("timm:tract_resnet8_cifar", {"num_classes": 10, "in_chans": 1}),
]


def _build(architecture: str, kwargs: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(architecture, **kwargs).eval()


@pytest.mark.parametrize(("architecture", "kwargs", "shape"), MODELS, ids=[m[0] for m in MODELS])
def test_round_trip_is_bit_exact(architecture: str, kwargs: dict, shape: tuple, tmp_path: Path) -> None:
    model = _build(architecture, kwargs)
    path = tract_hub.save_pretrained(model, tmp_path / "ckpt")
    loaded = tract_hub.from_pretrained(path).eval()
    assert type(loaded) is type(model)
    original, restored = model.state_dict(), loaded.state_dict()
    assert list(original) == list(restored)
    assert all(torch.equal(original[key], restored[key]) for key in original)
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


@pytest.mark.parametrize(("architecture", "kwargs"), TIMM_CONFIGS, ids=[m[0] for m in TIMM_CONFIGS])
def test_timm_config_is_exactly_what_timm_writes(architecture: str, kwargs: dict, tmp_path: Path) -> None:
    from timm.models._hub import save_for_hf

    model = _build(architecture, kwargs)
    ours = json.loads((tract_hub.save_pretrained(model, tmp_path / "ours") / "config.json").read_text())
    save_for_hf(model, tmp_path / "timm", safe_serialization=True)
    theirs = json.loads((tmp_path / "timm" / "config.json").read_text())
    assert set(ours) - set(theirs) == {METADATA_KEY}
    ours.pop(METADATA_KEY)
    # timm's own writer made it (same keys, values and order), less what names the source of timm's released
    # weights (a tag such as "a1_in1k", their license and paper): these weights are not those
    released = {key: value for key, value in theirs["pretrained_cfg"].items() if key in WEIGHT_SOURCE_KEYS}
    theirs["pretrained_cfg"] = {k: v for k, v in theirs["pretrained_cfg"].items() if k not in WEIGHT_SOURCE_KEYS}
    assert ours == theirs
    assert list(ours) == list(theirs) and list(ours["pretrained_cfg"]) == list(theirs["pretrained_cfg"])
    assert released.get("tag") is not None  # every one of these models has a tag to leave out


def test_torchvision_config_names_builder_and_kwargs(tmp_path: Path) -> None:
    model = _build("torchvision:squeezenet1_1", {"num_classes": 3})
    config = json.loads((tract_hub.save_pretrained(model, tmp_path / "c") / "config.json").read_text())
    assert config["architecture"] == "torchvision:squeezenet1_1"  # identified among torchvision's builders
    assert config["model_args"] == {"num_classes": 3}
    assert config["num_classes"] == 3


def test_metadata_block_records_tract_settings_and_weights(tmp_path: Path) -> None:
    model = tract_hub.patch(_build("timm:test_resnet", {"num_classes": 3}), lam=0.2, target="conv1.0")
    metadata = {"recipe": {"epochs": 3}, "metrics": {"top1": 71.5}, "dataset": "digits"}
    path = tract_hub.save_pretrained(model, tmp_path / "c", metadata=metadata)
    block = json.loads((path / "config.json").read_text())[METADATA_KEY]
    assert block["lam"] == 0.2
    assert block["first_layers"] == ["conv1.0"]
    assert block["exact"] is True  # patch's default: exact mode
    assert block["recipe"] == {"epochs": 3}
    assert block["metrics"] == {"top1": 71.5}
    assert block["dataset"] == "digits"
    assert block["format_version"] == 1
    assert block["architecture"] == "timm:test_resnet"
    assert block["versions"]["tract_hub"] == tract_hub.__version__
    assert block["versions"]["torch"] == torch.__version__
    assert block["weights_sha256"] == sha256_file(path / "model.safetensors")
    assert block["weights_bytes"] == (path / "model.safetensors").stat().st_size
    assert list(block) == sorted(block)


def test_resaving_a_loaded_checkpoint_gives_the_same_config_and_weights(saved_timm: Path, tmp_path: Path) -> None:
    metadata = {"lam": 0.1, "first_layers": ["conv1.0"]}  # what the fixture recorded
    again = tract_hub.save_pretrained(tract_hub.from_pretrained(saved_timm), tmp_path / "again", metadata=metadata)
    assert json.loads((again / "config.json").read_text()) == json.loads((saved_timm / "config.json").read_text())
    assert (again / "model.safetensors").read_bytes() == (saved_timm / "model.safetensors").read_bytes()


def test_loaded_timm_model_keeps_the_saved_pretrained_cfg(tmp_path: Path) -> None:
    model = _build("timm:tract_resnet8_cifar", {"num_classes": 10, "in_chans": 1})
    saved = tract_hub.save_pretrained(model, tmp_path / "c")
    written = json.loads((saved / "config.json").read_text())["pretrained_cfg"]
    loaded = tract_hub.from_pretrained(saved)
    assert tuple(written["input_size"]) == (1, 32, 32)  # the model's one channel (timm reads model.in_chans)
    assert len(written["mean"]) == len(written["std"]) == 1  # timm's adaptation of the 3-channel statistics
    assert tuple(loaded.pretrained_cfg["mean"]) == tuple(written["mean"])
    assert tuple(loaded.pretrained_cfg["input_size"]) == (1, 32, 32)


# (architecture, kwargs, input shape, first layer, head prefix, new classes)
HEADS = [
    ("timm:test_resnet", {"num_classes": 3}, (2, 3, 32, 32), "conv1.0", "fc.", 7),
    ("torchvision:squeezenet1_1", {"num_classes": 3}, (2, 3, 64, 64), "features.0", "classifier.1.", 7),
    ("torchvision:mobilenet_v3_small", {"num_classes": 5}, (2, 3, 32, 32), "features.0.0", "classifier.3.", 2),
]


@pytest.mark.parametrize(
    ("architecture", "kwargs", "shape", "first", "head", "classes"), HEADS, ids=[h[0] for h in HEADS]
)
def test_patched_fine_tuning_load_with_a_new_head(
    architecture: str, kwargs: dict, shape: tuple, first: str, head: str, classes: int, tmp_path: Path
) -> None:
    model = _build(architecture, kwargs)
    path = tract_hub.save_pretrained(model, tmp_path / "c", metadata={"lam": 0.2, "first_layers": [first]})
    loaded = tract_hub.from_pretrained(path, patched=True, num_classes=classes)
    assert [(layer.name, layer.lam) for layer in tract_hub.patched_layers(loaded)] == [(first, 0.2)]
    before, after = model.state_dict(), loaded.state_dict()
    assert list(before) == list(after)
    for key in before:
        if key.startswith(head):
            assert after[key].shape[0] == classes
        else:
            assert torch.equal(before[key], after[key]), key
    assert loaded(torch.randn(shape)).shape == (shape[0], classes)

"""TrActMetadata: round trip through JSON, unknown keys refused (closest key named), version checked, per-layer lam."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import tract_hub
from tract_hub.artifacts.metadata import FORMAT_VERSION, METADATA_KEY, TrActMetadata
from tract_hub.errors import CheckpointIntegrityError, HubError, InvalidArgumentError

FULL = TrActMetadata(
    architecture="timm:test_resnet",
    base_model="org/base",
    baseline={"epochs": 3, "final": {"top1": 0.7}},
    best={"epoch": 2, "top1": 0.8},
    checkpoint="best",
    dataset="cifar10",
    epochs=3,
    exact=True,
    first_layers=("conv1",),
    lam=0.2,
    license="apache-2.0",
    metrics={"top1": 0.79, "val_loss": None},
    recipe={"name": "r", "train": {"epochs": 3}},
    recipe_name="r",
    run_name="run",
    versions={"torch": "2.0"},
    weights_bytes=123,
    weights_sha256="a" * 64,
)
PER_LAYER = TrActMetadata(first_layers=("stem", "conv1"), layer_lams={"stem": 0.1, "conv1": 0.2})


@pytest.mark.parametrize("metadata", [FULL, PER_LAYER, TrActMetadata()], ids=["full", "per-layer", "empty"])
def test_json_round_trip(metadata: TrActMetadata) -> None:
    data = json.loads(json.dumps(metadata.to_json()))
    assert list(data) == sorted(data)
    assert TrActMetadata.from_json(data) == metadata


def test_per_layer_lam_is_explicit() -> None:
    assert PER_LAYER.to_json()["lam"] == {"stem": 0.1, "conv1": 0.2}
    assert PER_LAYER.lam is None and not PER_LAYER.is_vanilla
    assert [PER_LAYER.lam_for(layer) for layer in ("stem", "conv1")] == [0.1, 0.2]
    assert FULL.lams() == {"conv1": 0.2} and TrActMetadata().is_vanilla


# (case, block, error, message fragment)
BAD_BLOCKS = [
    ("misspelled key", {"format_version": 1, "frist_layers": ["conv1"]}, CheckpointIntegrityError, "'first_layers'"),
    ("newer version", {"format_version": FORMAT_VERSION + 1, "new_key": 1}, HubError, "Upgrade tract_hub"),
    ("no version", {"lam": 0.1}, CheckpointIntegrityError, "format_version is None"),
    ("wrong type", {"format_version": 1, "exact": "yes"}, CheckpointIntegrityError, "exact='yes'"),
    ("negative lam", {"format_version": 1, "lam": -0.1}, CheckpointIntegrityError, "positive finite"),
    ("lam of no layer", {"format_version": 1, "lam": {"fc": 0.1}}, CheckpointIntegrityError, "not among"),
    ("bad sha256", {"format_version": 1, "weights_sha256": "xyz"}, CheckpointIntegrityError, "sha256"),
    ("not an object", [1], CheckpointIntegrityError, "not an object"),
]


@pytest.mark.parametrize(("case", "block", "error", "fragment"), BAD_BLOCKS, ids=[b[0] for b in BAD_BLOCKS])
def test_bad_blocks_are_refused(case: str, block: object, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        TrActMetadata.from_json(block)


def test_user_metadata_names_the_closest_key() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'datset'.*did you mean 'dataset'"):
        TrActMetadata.from_user({"datset": "cifar10"})
    with pytest.raises(InvalidArgumentError, match="computes itself"):
        TrActMetadata.from_user({"versions": {}})


def test_a_block_written_by_the_previous_writer_is_read(tmp_path: Path) -> None:
    """config.json blocks of tract_hub before the typed metadata (only the keys it was given, lam a number)."""
    block = {
        "architecture": "timm:test_resnet",
        "exact": False,
        "first_layers": ["conv1.0"],
        "format_version": 1,
        "lam": 0.1,
        "metrics": None,
        "recipe": None,
        "versions": {"torch": torch.__version__},
        "weights_bytes": 10,
        "weights_file": "model.safetensors",
        "weights_sha256": "0" * 64,
    }
    metadata = TrActMetadata.from_json(block)
    assert metadata.lam == 0.1 and metadata.first_layers == ("conv1.0",) and metadata.metrics is None


def test_differing_lambdas_survive_save_and_patched_load(tmp_path: Path) -> None:
    """A model patched with a lambda per layer records each, and fine-tuning restores each (none is dropped)."""
    from tract_hub.models import create_model

    model = create_model("timm:test_resnet", num_classes=3)
    tract_hub.patch(model, 0.1, target="conv1.0")
    tract_hub.patch(model, 0.3, target="conv1.3")
    path = tract_hub.save_pretrained(model, tmp_path / "c")
    block = json.loads((path / "config.json").read_text())[METADATA_KEY]
    assert block["lam"] == {"conv1.0": 0.1, "conv1.3": 0.3} and block["first_layers"] == ["conv1.0", "conv1.3"]
    loaded = tract_hub.from_pretrained(path, patched=True)
    assert {layer.name: layer.lam for layer in tract_hub.patched_layers(loaded)} == {"conv1.0": 0.1, "conv1.3": 0.3}
    assert "`conv1.0`: 0.1, `conv1.3`: 0.3" in (path / "README.md").read_text()

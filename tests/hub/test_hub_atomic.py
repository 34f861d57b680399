"""save_pretrained writes atomically: an interrupted save leaves nothing that looks complete, and nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import tract_hub
from tract_hub.errors import HubError, InvalidArgumentError
from tract_hub.models import create_model
from tract_hub.pretrained import write as write_module


def _model(num_classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(num_classes)
    return create_model("timm:test_resnet", num_classes=num_classes)


def _interrupt_after_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the save stop (as Ctrl-C would) after the weights are written, before config.json."""
    real = write_module.build_metadata

    def interrupted(*args: object, **kwargs: object) -> object:
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(write_module, "build_metadata", interrupted)


def test_interrupted_save_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupt_after_weights(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        tract_hub.save_pretrained(_model(), tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tract_hub.save_pretrained(_model(3), tmp_path / "ckpt")
    before = {path.name: path.read_bytes() for path in target.iterdir()}
    _interrupt_after_weights(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        tract_hub.save_pretrained(_model(5), target, overwrite=True)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["ckpt"]


def test_existing_checkpoint_is_not_replaced_without_overwrite(saved_timm: Path) -> None:
    with pytest.raises(HubError, match="overwrite=True"):
        tract_hub.save_pretrained(_model(), saved_timm)


def test_a_file_is_not_a_checkpoint_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(HubError, match="not a directory"):
        tract_hub.save_pretrained(_model(), tmp_path / "file")


def test_empty_existing_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    assert (tract_hub.save_pretrained(_model(), tmp_path / "ckpt") / "config.json").is_file()


def test_overwrite_replaces_weights_keeps_card_and_other_files(tmp_path: Path) -> None:
    target = tract_hub.save_pretrained(_model(3), tmp_path / "ckpt")
    (target / "README.md").write_text("my own card")
    (target / "notes.txt").write_text("keep me")
    tract_hub.save_pretrained(_model(5), target, overwrite=True)
    assert json.loads((target / "config.json").read_text())["num_classes"] == 5
    assert (target / "README.md").read_text() == "my own card"
    assert (target / "notes.txt").read_text() == "keep me"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ckpt"]


def test_a_config_that_would_not_rebuild_the_model_is_refused(tmp_path: Path) -> None:
    model = create_model("torchvision:squeezenet1_1", num_classes=3)
    with pytest.raises(InvalidArgumentError, match="shape mismatch"):
        tract_hub.save_pretrained(model, tmp_path / "c", architecture="torchvision:squeezenet1_1", model_kwargs={})
    assert list(tmp_path.iterdir()) == []


# (case, keyword arguments of save_pretrained, message fragment)
BAD_ARGUMENTS = [
    ("unknown architecture", {"architecture": "timm:resnet_nonexistent"}, "neither a timm architecture"),
    ("metadata not JSON", {"metadata": {"recipe": object()}}, "not JSON data"),
    ("computed key", {"metadata": {"weights_sha256": "0" * 64}}, "computes itself"),
    ("bad lam", {"metadata": {"lam": -1.0}}, "positive finite"),
    ("unsafe kwargs", {"model_kwargs": {"pretrained": True}}, "architecture arguments"),
]


@pytest.mark.parametrize(("case", "kwargs", "fragment"), BAD_ARGUMENTS, ids=[b[0] for b in BAD_ARGUMENTS])
def test_bad_save_arguments_are_refused(case: str, kwargs: dict, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(tract_hub.TrActError, match=fragment):
        tract_hub.save_pretrained(_model(), tmp_path / "c", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_patched_model_and_contradicting_metadata_are_refused(tmp_path: Path) -> None:
    model = tract_hub.patch(_model(), lam=0.1, target="conv1.0")
    with pytest.raises(InvalidArgumentError, match="contradicts the patched model"):
        tract_hub.save_pretrained(model, tmp_path / "c", metadata={"lam": 0.2})

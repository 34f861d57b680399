"""--resume from the last checkpoint reproduces the uninterrupted run (same seed): the weights are equal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tract_hub.errors import CheckpointIntegrityError, RecipeError
from tract_hub.training import checkpoint, train
from tract_hub.training.loop import Trainer

from .builders import quick_recipe


class Interrupted(Exception):
    pass


def _interrupt_after_epoch(monkeypatch: pytest.MonkeyPatch, stop_after: int) -> None:
    original = Trainer._write_epoch

    def write_then_stop(self, epoch, row, improved):
        original(self, epoch, row, improved)
        if epoch == stop_after:
            raise Interrupted

    monkeypatch.setattr(Trainer, "_write_epoch", write_then_stop)


@pytest.mark.parametrize("overrides", [(), ("train.accum_steps=2",)], ids=["per-backward", "exact-accumulation"])
def test_resume_reaches_the_uninterrupted_weights(tmp_path: Path, monkeypatch, overrides) -> None:
    recipe = quick_recipe("train.epochs=2", *overrides)
    straight = train(recipe, tmp_path / "straight", device="cpu")

    with monkeypatch.context() as patch:
        _interrupt_after_epoch(patch, stop_after=1)
        with pytest.raises(Interrupted):
            train(recipe, tmp_path / "resumed", device="cpu")
    assert not (tmp_path / "resumed" / "summary.json").read_text().count('"complete": true')
    resumed = train(recipe, tmp_path / "resumed", resume=True, device="cpu")

    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    straight_rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert [row["train_loss"] for row in rows] == [row["train_loss"] for row in straight_rows]
    assert resumed.summary.final == straight.summary.final
    environment = json.loads((tmp_path / "resumed" / "environment.json").read_text())
    assert environment["resumed_after_epoch"] == 1


def test_resume_refuses_a_different_recipe(tmp_path: Path) -> None:
    train(quick_recipe("train.epochs=1"), tmp_path / "run", device="cpu")
    with pytest.raises(RecipeError, match=r"differs from .*recipe.yaml at optimizer.lr \(0.08 -> 0.05\)"):
        train(quick_recipe("train.epochs=1", "optimizer.lr=0.05"), tmp_path / "run", resume=True, device="cpu")


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path: Path) -> None:
    result = train(quick_recipe("train.epochs=1"), tmp_path / "fresh", resume=True, device="cpu")
    assert result.summary.epochs == 1


def test_an_interrupted_save_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "last"
    checkpoint.save_checkpoint(folder, {"w": torch.ones(2)}, {"epoch": 1})
    checkpoint.save_checkpoint(folder, {"w": torch.zeros(2)}, {"epoch": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    # an interruption between the two renames of a save: only the previous checkpoint is complete
    folder.rename(tmp_path / ".last.old")
    found = checkpoint.checkpoint_directory(folder)
    assert found == tmp_path / ".last.old"
    assert checkpoint.load_training_state(found)["epoch"] == 2


def test_damaged_checkpoint_files_raise_integrity_errors(tmp_path: Path) -> None:
    folder = tmp_path / "last"
    checkpoint.save_checkpoint(folder, {"w": torch.ones(2)}, {"epoch": 1})
    (folder / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointIntegrityError, match="cannot be read as safetensors"):
        checkpoint.load_model_state(folder)
    torch.save({"obj": Interrupted()}, folder / "training_state.pt")  # an arbitrary object is not loaded
    with pytest.raises(CheckpointIntegrityError, match="weights_only=True"):
        checkpoint.load_training_state(folder)

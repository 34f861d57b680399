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


@pytest.mark.parametrize(
    "overrides",
    [(), ("train.accum_steps=2",), ("train.ema={decay: 0.9}",)],
    ids=["one-batch", "exact-accumulation", "model-ema"],
)
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
    if recipe.train.ema is not None:  # the EMA weights too
        expected_ema = checkpoint.load_ema_state(tmp_path / "straight" / "checkpoints" / "last")
        actual_ema = checkpoint.load_ema_state(tmp_path / "resumed" / "checkpoints" / "last")
        assert expected_ema is not None and actual_ema is not None
        assert all(torch.equal(expected_ema[key], actual_ema[key]) for key in expected_ema)
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


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_with_more_epochs_continues_the_longer_run(tmp_path: Path) -> None:
    # with a constant schedule nothing depends on the run's length: 1 epoch + 1 more = 2 epochs, bit for bit
    constant = ("schedule.name=constant",)
    straight = train(quick_recipe("train.epochs=2", *constant), tmp_path / "straight", device="cpu")
    train(quick_recipe("train.epochs=1", *constant), tmp_path / "longer", device="cpu")
    longer = train(quick_recipe("train.epochs=2", *constant), tmp_path / "longer", resume=True, device="cpu")
    expected, actual = straight.model.state_dict(), longer.model.state_dict()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    assert [row["epoch"] for row in _rows(tmp_path / "longer")] == [1, 2] and longer.summary.complete
    environment = json.loads((tmp_path / "longer" / "environment.json").read_text())
    assert environment["resume_changes"] == [{"after_epoch": 1, "changes": ["train.epochs (1 -> 2)"]}]


def test_a_longer_cosine_schedule_continues_at_the_longer_runs_rate(tmp_path: Path, caplog) -> None:
    straight = train(quick_recipe("train.epochs=2"), tmp_path / "straight", device="cpu")
    train(quick_recipe("train.epochs=1"), tmp_path / "longer", device="cpu")
    with caplog.at_level("WARNING", logger="tract_hub"):
        train(quick_recipe("train.epochs=2"), tmp_path / "longer", resume=True, device="cpu")
    assert "train.epochs 1 -> 2: the cosine schedule is recomputed for 2 epochs" in caplog.text
    # epoch 1 kept the 1-epoch schedule's rates; from epoch 2 on, the 2-epoch run's rates
    assert _rows(tmp_path / "longer")[1]["lr"] == _rows(tmp_path / "straight")[1]["lr"]
    assert _rows(tmp_path / "longer")[0]["lr"] != _rows(tmp_path / "straight")[0]["lr"]
    assert straight.summary.epochs == 2


def test_resume_refuses_what_decided_the_trained_epochs(tmp_path: Path) -> None:
    train(quick_recipe("train.epochs=2"), tmp_path / "run", device="cpu")
    with pytest.raises(RecipeError, match=r"at train.seed \(0 -> 1\): these keys decided how the trained epochs"):
        train(quick_recipe("train.epochs=3", "train.seed=1"), tmp_path / "run", resume=True, device="cpu")
    with pytest.raises(RecipeError, match=r"train\.epochs=1 is fewer than the 2 epochs already trained"):
        train(quick_recipe("train.epochs=1"), tmp_path / "run", resume=True, device="cpu")

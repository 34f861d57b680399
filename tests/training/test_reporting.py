"""What a run reports: log lines every --log-interval steps without a terminal, summary.csv, TensorBoard, W&B."""

from __future__ import annotations

import csv
import importlib.machinery
import json
import logging
import sys
import types
from pathlib import Path

import pytest

from tract_hub.errors import InvalidArgumentError
from tract_hub.training import sinks, train
from tract_hub.training.sinks import ReportOptions

from .builders import quick_recipe

NO_TENSORBOARD = ReportOptions(log_interval=2, tensorboard=False)


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("bar", [False, True], ids=["pipe", "terminal-bar"])
def test_log_lines_every_interval(tmp_path: Path, caplog: pytest.LogCaptureFixture, bar: bool) -> None:
    with caplog.at_level(logging.INFO, logger="tract_hub"):
        train(quick_recipe("train.epochs=1"), tmp_path / "run", device="cpu", show_progress=bar, report=NO_TENSORBOARD)
    steps = [r.getMessage() for r in caplog.records if r.name == "tract_hub.training.progress"]
    assert [line.split("  ")[1] for line in steps] == ["step 2/4 (50%)", "step 4/4 (100%)"]  # 4 steps, every 2
    for line in steps:
        assert line.startswith("epoch 1/1  step ")
        for part in (" loss ", " (epoch ", " lr ", " img/s ", " data ", " s/step ", " eta ", " peak "):
            assert part in line, (part, line)
    (epoch,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1 done")]
    assert " validation top1 " in epoch and "%  top5 " in epoch  # accuracies in %
    assert any(r.getMessage().startswith("training demo_digits (TrAct lam=0.1) for 1 epoch: ") for r in caplog.records)


def test_log_interval_is_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="log_interval=0 must be a positive number of steps"):
        ReportOptions(log_interval=0)


def test_summary_csv_holds_the_metrics_rows(tmp_path: Path) -> None:
    run = train(quick_recipe("train.epochs=2"), tmp_path / "run", device="cpu", report=NO_TENSORBOARD).run_dir
    with open(run / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    metrics = _rows(run)
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert [float(row["top1"]) for row in rows] == [row["top1"] for row in metrics]
    assert [float(row["train_loss"]) for row in rows] == [row["train_loss"] for row in metrics]
    assert rows[0]["tract_lam"] == "0.1" and not (run / "tensorboard").exists()


def test_tensorboard_event_file(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    report = ReportOptions(log_interval=2, tensorboard=True)
    result = train(quick_recipe("train.epochs=2"), tmp_path / "run", device="cpu", report=report)
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/images_per_s", "epoch/top1", "epoch/val_loss"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6, 8]
    expected = [row["top1"] for row in _rows(result.run_dir)]
    assert [e.value for e in events.Scalars("epoch/top1")] == pytest.approx(expected, rel=1e-6)  # float32 events


def test_missing_tensorboard_is_one_line_or_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sinks, "tensorboard_installed", lambda: False)
    with pytest.raises(InvalidArgumentError, match="tensorboard package is not installed"):
        train(quick_recipe("train.epochs=1"), tmp_path / "asked", device="cpu", report=ReportOptions(tensorboard=True))
    assert not (tmp_path / "asked").exists()  # refused before anything was written
    with caplog.at_level(logging.INFO, logger="tract_hub"):
        train(quick_recipe("train.epochs=1"), tmp_path / "auto", device="cpu")
    assert [r.getMessage() for r in caplog.records if "TensorBoard" in r.getMessage()] == [
        "TensorBoard: not installed, no event files (pip install tensorboard to get them)"
    ]


class FakeWandbRun:
    def __init__(self) -> None:
        self.logged: list[tuple[dict, int]] = []
        self.finished = False

    def log(self, values: dict, step: int) -> None:
        self.logged.append((values, step))

    def finish(self) -> None:
        self.finished = True


def test_wandb_only_when_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks, "wandb_installed", lambda: False)
    with pytest.raises(InvalidArgumentError, match="--wandb: the wandb package is not installed"):
        train(quick_recipe("train.epochs=1"), tmp_path / "none", device="cpu", report=ReportOptions(wandb=True))
    monkeypatch.undo()

    fake, runs, calls = types.ModuleType("wandb"), [], []
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)

    def init(**options):
        calls.append(options)
        runs.append(FakeWandbRun())
        return runs[-1]

    fake.init = init
    monkeypatch.setitem(sys.modules, "wandb", fake)
    report = ReportOptions(log_interval=2, tensorboard=False, wandb=True, wandb_project="proj")
    train(quick_recipe("train.epochs=1"), tmp_path / "run", device="cpu", report=report)
    (options,) = calls
    assert options["project"] == "proj" and options["name"] == "run" and options["config"]["lam"] == 0.1
    (run,) = runs
    assert run.finished and [step for _, step in run.logged] == [2, 4, 4]
    assert "train/loss" in run.logged[0][0] and "epoch/top1" in run.logged[-1][0]


@pytest.mark.parametrize(("steps", "interval", "logged"), [(5, 2, [2, 4, 5]), (3, 50, []), (4, 4, [4])])
def test_which_steps_are_logged(steps, interval, logged, caplog: pytest.LogCaptureFixture) -> None:
    from tract_hub.training.progress import StepMeter

    meter = StepMeter(epoch=1, epochs=1, steps=steps, interval=interval, world_size=2)
    with caplog.at_level(logging.INFO, logger="tract_hub"):
        for _ in range(steps):
            meter.step(loss_sum=6.0, samples=3, lr=0.5, data_time=0.25)
    assert [int(r.getMessage().split("  ")[1].split()[1].split("/")[0]) for r in caplog.records] == logged
    if logged:
        assert "loss 2.0000 (epoch 2.0000)  lr 0.5  " in caplog.records[0].getMessage()
        assert "data 0.250 s/step" in caplog.records[0].getMessage()

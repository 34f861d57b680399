"""RunDirectory writes and reads a run: round trip, unknown keys refused, version checked, old runs read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tract_hub.artifacts import DETECTION, ModelRecord, RunDirectory, RunSummary, task_of
from tract_hub.errors import DataError

SUMMARY = RunSummary(
    model=ModelRecord("torchvision:vgg11", {}, detector="faster_rcnn"),
    name="run",
    recipe_name="voc",
    dataset="voc2007",
    num_classes=21,
    lam=0.1,
    exact=True,
    first_layers=("backbone.0",),
    epochs=2,
    complete=True,
    final={"map": 0.5, "train_loss": 1.0},
    best={"epoch": 2, "map": 0.5},
)

#: summary.json exactly as the trainer before the typed summary wrote it (keys sorted, no null wrappers).
PREVIOUS_SUMMARY = {
    "best": {"epoch": 1, "top1": 0.5, "top5": 0.9, "val_loss": 1.2},
    "complete": True,
    "dataset": "digits",
    "diverged_at_epoch": None,
    "epochs": 1,
    "exact": False,
    "final": {"top1": 0.5, "top5": 0.9, "train_loss": 1.5, "val_loss": 1.2},
    "first_layers": ["conv1"],
    "format_version": 1,
    "lam": 0.1,
    "model": {"architecture": "timm:tract_resnet8_cifar", "kwargs": {"in_chans": 1, "num_classes": 10}},
    "name": "quick-tract",
    "num_classes": 10,
    "recipe_name": "demo_digits",
}


def test_summary_round_trip(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path)
    run.write_summary(SUMMARY)
    assert run.read_summary() == SUMMARY
    data = json.loads(run.summary_path.read_text())
    assert list(data) == sorted(data) and data["model"]["detector"] == "faster_rcnn"
    assert SUMMARY.task is DETECTION is task_of("voc2007") and SUMMARY.model.wrappers == ["detector"]


def test_a_summary_written_by_the_previous_trainer_is_read(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(PREVIOUS_SUMMARY))
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "top1": 0.5}) + "\n")
    run = RunDirectory(tmp_path).read()
    assert run.summary.first_layers == ("conv1",) and run.summary.model.kwargs["in_chans"] == 1
    assert run.main_metric == "top1" and run.label == "quick-tract (TrAct λ=0.1)" and run.history[0]["top1"] == 0.5


# (case, change to the previous summary, message fragment)
BAD_SUMMARIES = [
    ("misspelled key", {"epoch": 1}, r"unknown key 'epoch'; did you mean 'epochs'"),
    ("nested misspelling", {"model": {"architecture": "timm:x", "kwarg": {}}}, r"'model.kwarg'; did you mean 'kwargs'"),
    ("newer version", {"format_version": 2, "new": 1}, r"format_version 2: this tract_hub reads run format 1"),
    ("wrong type", {"epochs": "one"}, r"epochs='one'"),
    ("bad lam", {"lam": 0}, r"lam=0.0: expected a positive number"),
    ("no model", {"model": None}, r"section .model. must be a mapping"),
]


@pytest.mark.parametrize(("case", "change", "fragment"), BAD_SUMMARIES, ids=[b[0] for b in BAD_SUMMARIES])
def test_bad_summaries_are_refused(case: str, change: dict, fragment: str, tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({**PREVIOUS_SUMMARY, **change}))
    with pytest.raises(DataError, match=fragment) as raised:
        RunDirectory(tmp_path).read_summary()
    assert "summary.json" in str(raised.value)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"has no summary\.json"):
        RunDirectory(tmp_path).read()
    (tmp_path / "summary.json").write_text(json.dumps(PREVIOUS_SUMMARY))
    with pytest.raises(DataError, match=r"has no metrics\.jsonl"):
        RunDirectory(tmp_path).read(need_history=True)
    assert RunDirectory(tmp_path).read().history == []  # a card can do without curves
    with pytest.raises(DataError, match="has no best checkpoint"):
        RunDirectory(tmp_path).weights("best")
    assert not RunDirectory.holds_run(tmp_path)

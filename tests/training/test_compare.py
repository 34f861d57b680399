"""tract-hub compare: a table of several runs and a plot with vanilla and TrAct overlaid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tract_hub.cli import main
from tract_hub.errors import DataError
from tract_hub.training.compare import compare_runs, load_runs, table_rows


def write_run(root: Path, name: str, lam: float | None, accuracies: list[float]) -> Path:
    """A run directory as the trainer writes it (summary.json + metrics.jsonl), with given accuracies."""
    run = root / name
    run.mkdir(parents=True)
    rows = [
        {"epoch": e, "top1": a, "top5": 1.0, "train_loss": 1.0 / e, "val_loss": 1.0, "lr": 0.1,
         "epoch_time_s": 2.0, "images_per_s": 100.0, "tract": {"lam": lam, "exact": False}}
        for e, a in enumerate(accuracies, 1)
    ]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    best = max(range(len(accuracies)), key=accuracies.__getitem__)
    summary = {
        "format_version": 1, "name": name, "recipe_name": "r", "lam": lam, "exact": False, "epochs": len(rows),
        "model": {"architecture": "timm:tract_resnet8_cifar", "kwargs": {}}, "dataset": "digits",
        "num_classes": 10, "first_layers": ["conv1"], "final": {"top1": accuracies[-1]},
        "best": {"epoch": best + 1, "top1": accuracies[best]},
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_table_and_plot(tmp_path: Path) -> None:
    vanilla = write_run(tmp_path, "digits-vanilla", None, [0.5, 0.7, 0.8])
    tract = write_run(tmp_path, "digits-tract", 0.1, [0.6, 0.9, 0.85])
    table = compare_runs([vanilla, tract], tmp_path / "plot.png")
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["run", "lam", "epochs", "metric"]
    assert "digits-vanilla  vanilla" in lines[2] and "80.00" in lines[2]
    assert "digits-tract    0.1" in lines[3] and "85.00" in lines[3] and "90.00 (2)" in lines[3]
    assert (tmp_path / "plot.png").stat().st_size > 1000
    rows = table_rows(load_runs([tract]))
    assert rows[0]["best_epoch"] == 2 and rows[0]["train_time_s"] == 6.0


def test_cli_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [write_run(tmp_path, n, lam, [0.5, 0.6]) for n, lam in (("a", None), ("b", 0.2))]
    assert main(["compare", *map(str, runs), "--plot", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "vanilla" in out and "0.2" in out and f"plot: {tmp_path / 'c.png'}" in out


def test_not_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match=r"summary\.json is missing"):
        load_runs([tmp_path])
    assert main(["compare", str(tmp_path / "nowhere"), "--no-plot"]) == 1
    assert "tract-hub compare: error:" in capsys.readouterr().err

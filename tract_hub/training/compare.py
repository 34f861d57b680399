"""Compare runs: a table of their results and one plot of accuracy against epochs, vanilla and TrAct overlaid.

Example:
    >>> import tempfile
    >>> from tract_hub.training import train
    >>> from tract_hub.training.demo_recipe import demo_recipe
    >>> tiny = ["train.epochs=1", "data.digits.size=8", "model.kwargs.width=4", "data.max_train_samples=128"]
    >>> root = tempfile.mkdtemp()
    >>> runs = [train(demo_recipe([*tiny, f"lam={lam}"]), f"{root}/{name}", device="cpu").run_dir
    ...         for name, lam in (("vanilla", "null"), ("tract", 0.1))]
    >>> print(compare_runs(runs, f"{root}/compare.png").splitlines()[0])
    run      lam      epochs  metric  final %  best % (epoch)  train time
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .plots import plot_comparison
from .run_dir import RunDirectory


@dataclass
class RunRecord:
    """One run directory, read."""

    path: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]

    @property
    def label(self) -> str:
        lam = self.summary.get("lam")
        return f"{self.summary.get('name', self.path.name)} ({'vanilla' if lam is None else f'TrAct λ={lam}'})"

    @property
    def is_tract(self) -> bool:
        return self.summary.get("lam") is not None

    @property
    def metric(self) -> str:
        return "map" if "map" in self.summary.get("final", {}) else "top1"


def load_runs(paths: Sequence[str | Path]) -> list[RunRecord]:
    """Read the summary and metrics of each run directory (a clear DataError for anything else)."""
    if not paths:
        raise DataError("no run directories given")
    records = []
    for path in paths:
        run = RunDirectory(path)
        if not run.path.is_dir():
            raise DataError(f"{run.path} is not a directory")
        records.append(RunRecord(run.path, run.read_summary(), run.read_metrics()))
    return records


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def table_rows(runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per run: name, lam, epochs, final and best metric, training time."""
    rows = []
    for run in runs:
        metric = run.metric
        best = run.summary.get("best", {})
        rows.append(
            {
                "run": run.summary.get("name", run.path.name),
                "lam": run.summary.get("lam"),
                "epochs": run.summary.get("epochs"),
                "metric": metric,
                "final": run.summary.get("final", {}).get(metric),
                "best": best.get(metric),
                "best_epoch": best.get("epoch"),
                "train_time_s": sum(row.get("epoch_time_s") or 0.0 for row in run.metrics),
            }
        )
    return rows


def format_table(runs: Sequence[RunRecord]) -> str:
    """A fixed-width text table (accuracy / mAP in %)."""
    header = ("run", "lam", "epochs", "metric", "final %", "best % (epoch)", "train time")
    body = [
        (
            row["run"],
            "vanilla" if row["lam"] is None else f"{row['lam']:g}",
            str(row["epochs"]),
            row["metric"],
            _percent(row["final"]),
            f"{_percent(row['best'])} ({row['best_epoch']})" if row["best"] is not None else "-",
            f"{row['train_time_s']:.1f}s",
        )
        for row in table_rows(runs)
    ]
    widths = [max(len(cells[i]) for cells in (header, *body)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) for cells in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def compare_runs(paths: Sequence[str | Path], plot_path: str | Path | None = None, *, title: str = "") -> str:
    """The table for ``paths``; also writes the overlay plot to ``plot_path`` when given."""
    runs = load_runs(paths)
    if plot_path is not None:
        plot_comparison([(run.label, run.is_tract, run.metrics) for run in runs], plot_path, title=title)
    return format_table(runs)

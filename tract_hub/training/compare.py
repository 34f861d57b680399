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
from pathlib import Path
from typing import Any

from ..artifacts.curves import Curve, plot_curves
from ..artifacts.run_dir import Run, RunDirectory
from ..errors import DataError


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Read the summary and metrics of each run directory (a clear DataError for anything else)."""
    if not paths:
        raise DataError("no run directories given")
    return [RunDirectory(path).read(need_history=True) for path in paths]


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def table_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run: name, lam, epochs, final and best main metric, training time."""
    rows = []
    for run in runs:
        metric, summary = run.main_metric, run.summary
        rows.append(
            {
                "run": run.name,
                "lam": summary.lam,
                "epochs": summary.epochs,
                "metric": metric,
                "final": summary.final.get(metric),
                "best": summary.best.get(metric),
                "best_epoch": summary.best.get("epoch"),
                "train_time_s": sum(row.get("epoch_time_s") or 0.0 for row in run.history),
            }
        )
    return rows


def format_table(runs: Sequence[Run]) -> str:
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
        curves = [Curve(run.label, run.is_tract, run.history) for run in runs]
        plot_curves(curves, plot_path, runs[0].summary.task, title=title, losses=False)
    return format_table(runs)

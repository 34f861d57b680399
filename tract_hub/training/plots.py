"""Plots of training curves: one run (``plots/curves.png``) and several runs overlaid (``tract-hub compare``).

Example:
    >>> import tempfile, pathlib
    >>> rows = [{"epoch": 1, "top1": 0.5, "train_loss": 1.0, "val_loss": 1.1},
    ...         {"epoch": 2, "top1": 0.7, "train_loss": 0.6, "val_loss": 0.8}]
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
    >>> plot_run_curves(rows, path, title="demo").name
    'curves.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def metric_name(rows: Sequence[dict[str, Any]]) -> str:
    """``"map"`` for detection runs, else ``"top1"``."""
    return "map" if any(row.get("map") is not None for row in rows) else "top1"


def _integer_epochs(*axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(row["epoch"], row[key]) for row in rows if row.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_run_curves(rows: Sequence[dict[str, Any]], path: str | Path, *, title: str) -> Path:
    """Accuracy (or mAP) and losses against epochs for one run."""
    plt = _pyplot()
    metric = metric_name(rows)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(*_series(rows, metric), marker="o", markersize=3)
    left.set(xlabel="epoch", ylabel="top-1 accuracy" if metric == "top1" else "mAP", title=title)
    left.grid(alpha=0.3)
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        epochs, values = _series(rows, key)
        if epochs:
            right.plot(epochs, values, style, label=key.replace("_", " "))
    right.set(xlabel="epoch", ylabel="loss", title="loss")
    right.grid(alpha=0.3)
    right.legend()
    return _save(plt, figure, (left, right), path, left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.25)


def plot_comparison(
    runs: Sequence[tuple[str, bool, Sequence[dict[str, Any]]]], path: str | Path, *, title: str = ""
) -> Path:
    """Accuracy (or mAP) against epochs for several runs: ``(label, is_tract, rows)``; TrAct solid, vanilla
    dashed, as in the paper's figures."""
    plt = _pyplot()
    metric = metric_name([row for _, _, rows in runs for row in rows])
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, is_tract, rows in runs:
        axis.plot(*_series(rows, metric), "-" if is_tract else "--", marker="o", markersize=2.5, label=label)
    axis.set(xlabel="epoch", ylabel="top-1 accuracy" if metric == "top1" else "mAP", title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(plt, figure, (axis,), path, **_SINGLE_AXIS_MARGINS)


def plot_paired_curves(curves: dict[str, Sequence[Sequence[float]]], path: str | Path, *, title: str = "") -> Path:
    """Accuracy against epochs of paired runs: ``curves["vanilla"]`` and ``curves["tract"]`` hold one list of
    per-epoch accuracies per seed. Each seed thin, the mean over seeds thick; vanilla dashed, TrAct solid."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for variant, color, style, label in (("vanilla", "tab:gray", "--", "vanilla"), ("tract", "tab:red", "-", "TrAct")):
        runs = [list(run) for run in curves[variant]]
        epochs = list(range(1, len(runs[0]) + 1))
        for run in runs:
            axis.plot(epochs, run, style, color=color, alpha=0.3, linewidth=1)
        mean = [sum(values) / len(values) for values in zip(*runs, strict=True)]
        axis.plot(epochs, mean, style, color=color, linewidth=2.5, marker="o", markersize=4,
                  label=f"{label} (mean of {len(runs)} seed{'s' if len(runs) > 1 else ''})")  # fmt: skip
    axis.set(xlabel="epoch", ylabel="test top-1 accuracy", title=title)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    return _save(plt, figure, (axis,), path, **_SINGLE_AXIS_MARGINS)


_SINGLE_AXIS_MARGINS = {"left": 0.11, "right": 0.97, "bottom": 0.12, "top": 0.92}


def _save(plt: Any, figure: Any, axes: Sequence[Any], path: str | Path, **margins: float) -> Path:
    """Integer epoch ticks on ``axes``, ``margins`` as ``subplots_adjust`` takes them, then write ``figure`` to
    ``path`` (parent directories made) and close it."""
    _integer_epochs(*axes)
    figure.subplots_adjust(**margins)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

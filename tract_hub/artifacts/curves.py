"""Training curves from metrics rows: one run (``plots/curves.png``), runs overlaid (``tract-hub compare``, the
model card's ``training_curves.png``), and paired seeds (the demo). TrAct solid, vanilla dashed, as in the
paper's figures. The task (:mod:`~tract_hub.artifacts.task`) names the metric that is plotted, in percent (the
rows hold fractions), with its EMA dotted where a run keeps one (``ema_top1``, ...); the loss axis is
logarithmic when the losses span more than a factor of :data:`LOG_LOSS_RATIO` (an early loss would otherwise
flatten the rest).

Example:
    >>> import tempfile, pathlib
    >>> from tract_hub.artifacts.task import CLASSIFICATION
    >>> rows = [{"epoch": 1, "top1": 0.5, "train_loss": 1.0, "val_loss": 1.1},
    ...         {"epoch": 2, "top1": 0.7, "train_loss": 0.6, "val_loss": 0.8}]
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
    >>> plot_curves([Curve("demo", True, rows)], path, CLASSIFICATION, title="demo").name
    'curves.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .task import Task

LOSSES = ("train_loss", "val_loss")
_LOSS_STYLES = {"train_loss": ":", "val_loss": "-"}
_LOSS_LABELS = {"train_loss": "training loss", "val_loss": "validation loss"}

#: Largest / smallest plotted loss above which the loss axis is logarithmic.
LOG_LOSS_RATIO = 10.0


@dataclass(frozen=True)
class Curve:
    """One run's metrics rows and how the legend names it."""

    label: str
    is_tract: bool
    rows: Sequence[dict[str, Any]]


def series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of the rows that have a number under ``key`` (a row without ``epoch`` counts from 1)."""
    epochs, values = [], []
    for index, row in enumerate(rows, start=1):
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            epochs.append(row.get("epoch", index))
            values.append(value)
    return epochs, values


def percent(values: Sequence[float]) -> list[float]:
    """Fractions in [0, 1] as percentages."""
    return [100.0 * value for value in values]


def use_log_scale(values: Sequence[float], ratio: float = LOG_LOSS_RATIO) -> bool:
    """Whether ``values`` (all positive) span more than ``ratio``: then a log axis shows them all."""
    positive = [value for value in values if value > 0]
    return len(positive) == len(values) > 1 and max(positive) > ratio * min(positive)


def _figure(panels: int, width: float = 5.0) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * panels, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, list(figure.subplots(1, panels, squeeze=False)[0])


def _finish(figure: Any, axes: Sequence[Any], path: str | Path) -> Path:
    """Integer epoch ticks, grids and legends on ``axes``; write ``figure`` to ``path`` (parents made)."""
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def plot_curves(
    curves: Sequence[Curve], path: str | Path, task: Task, *, title: str = "", losses: bool = True
) -> Path | None:
    """The task's main metric (and, with ``losses``, the losses) against epochs for each curve.

    Returns ``path``, or None (and writes nothing) when no curve has anything to plot.
    """
    metric = task.main_metric
    loss_keys = [key for key in LOSSES if losses and any(series(c.rows, key)[0] for c in curves)]
    has_metric = any(series(c.rows, metric)[0] for c in curves)
    if not has_metric and not loss_keys:
        return None
    figure, axes = _figure(int(has_metric) + bool(loss_keys))
    colors = [f"C{index}" for index in range(len(curves))]
    if has_metric:
        axis = axes[0]
        for curve, color in zip(curves, colors, strict=True):
            style = "-" if curve.is_tract else "--"
            epochs, values = series(curve.rows, metric)
            axis.plot(epochs, percent(values), style, color=color, marker="o", markersize=2.5, label=curve.label)
            epochs, values = series(curve.rows, f"ema_{metric}")  # a run that keeps an EMA of its weights
            if values:
                axis.plot(
                    epochs, percent(values), ":", color=color, marker="x", markersize=3, label=f"{curve.label} EMA"
                )
        axis.set(ylabel=f"validation {task.metric_label} (%)", title=title)
    if loss_keys:
        axis = axes[-1]
        plotted: list[float] = []
        for curve, color in zip(curves, colors, strict=True):
            for key in loss_keys:
                label = f"{curve.label} {_LOSS_LABELS[key]}"
                epochs, values = series(curve.rows, key)
                axis.plot(epochs, values, _LOSS_STYLES[key], color=color, label=label)
                plotted += values
        log = use_log_scale(plotted)
        if log:
            axis.set_yscale("log")
        axis.set(ylabel="loss (log scale)" if log else "loss", title="loss")
    return _finish(figure, axes, path)


def plot_paired_curves(
    curves: dict[str, Sequence[Sequence[float]]],
    path: str | Path,
    *,
    title: str = "",
    seeds: Sequence[int] | None = None,
) -> Path:
    """Validation accuracy (in %) against epochs of paired runs: ``curves["vanilla"]`` and ``curves["tract"]``
    hold one list of per-epoch accuracies (fractions) per seed, ``seeds`` their seeds (default 0, 1, ...). Each
    seed thin, the mean over seeds thick, each in the legend; vanilla dashed, TrAct solid."""
    figure, (axis,) = _figure(1, width=7.0)
    for variant, color, style, label in (("vanilla", "tab:gray", "--", "vanilla"), ("tract", "tab:red", "-", "TrAct")):
        runs = [percent(run) for run in curves[variant]]
        names = list(seeds) if seeds is not None else list(range(len(runs)))
        epochs = list(range(1, len(runs[0]) + 1))
        for seed, run in zip(names, runs, strict=True):
            axis.plot(epochs, run, style, color=color, alpha=0.35, linewidth=1, label=f"{label}, seed {seed}")
        mean = [sum(values) / len(values) for values in zip(*runs, strict=True)]
        over = f"mean of {len(runs)} seed{'s' if len(runs) > 1 else ''}"
        axis.plot(epochs, mean, style, color=color, linewidth=2.5, marker="o", markersize=4, label=f"{label}, {over}")
    axis.set(ylabel="validation top-1 accuracy (%)", title=title)
    return _finish(figure, [axis], path)

"""The training-curve figure of a model card: the main metric and the losses against epochs, TrAct vs vanilla.

Example:
    >>> import pathlib, tempfile
    >>> from tract_hub.hub.card import RunResults
    >>> from tract_hub.hub.plot import write_training_curves
    >>> run = RunResults(lam=0.1, history=[{"epoch": 1, "top1": 50.0}, {"epoch": 2, "top1": 60.0}])
    >>> write_training_curves(pathlib.Path(tempfile.mkdtemp()) / "curves.png", [run])
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .card import RunResults

_LOSSES = ("train_loss", "val_loss")


def _series(results: RunResults, key: str) -> tuple[list[float], list[float]]:
    epochs, values = [], []
    for index, row in enumerate(results.history, start=1):
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            epochs.append(row.get("epoch", index))
            values.append(value)
    return epochs, values


def write_training_curves(path: Path, runs: Sequence[RunResults]) -> bool:
    """Plot the runs' histories into a PNG at ``path``; returns False (and writes nothing) if none has any."""
    runs = [run for run in runs if run.history]
    metric = next((key for key in ("top1", "map") if any(_series(run, key)[1] for run in runs)), None)
    losses = [key for key in _LOSSES if any(_series(run, key)[1] for run in runs)]
    if metric is None and not losses:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [key for key in (metric,) if key] + (["loss"] if losses else [])
    figure = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, panel in zip(axes, panels, strict=True):
        for run in runs:
            keys = [panel] if panel != "loss" else losses
            for key in keys:
                epochs, values = _series(run, key)
                style = "--" if key == "train_loss" else "-"
                label = run.label if panel != "loss" else f"{run.label} {key.replace('_', ' ')}"
                axis.plot(epochs, values, style, label=label, color="tab:orange" if run.lam is not None else "tab:blue")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(panel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.savefig(path, dpi=110)
    return True

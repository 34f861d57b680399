"""The results section of a model card: final and best metrics, vanilla against TrAct, and the epoch TrAct
reached the vanilla run's final score.

Scores (accuracies, mAP: the task's metrics, :mod:`tract_hub.artifacts.task`) are shown as the command line
shows them, in percent with 2 decimals, and their differences in percentage points; losses as numbers. The
metrics are recorded as fractions (``config.json``, the model-index of the front matter).

Example:
    >>> from tract_hub.artifacts.task import CLASSIFICATION
    >>> run = RunResults(0.1, 2, {"top1": 0.9123, "val_loss": 0.25})
    >>> print(results_section(run, None, CLASSIFICATION))
    | Metric | TrAct (λ = 0.1) |
    |---|---|
    | Epochs | 2 |
    | Final top1 | 91.23% |
    | Final val_loss | 0.25 |
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..artifacts.metadata import TrActMetadata
from ..artifacts.task import METRIC_ORDER, Task, metric
from .markdown import code, word


@dataclass(frozen=True)
class RunResults:
    """What one training run reports: lambda (None = vanilla), epochs, final and best metrics, per-epoch history."""

    lam: float | None
    epochs: int | None = None
    final: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "Vanilla" if self.lam is None else f"TrAct (λ = {self.lam:g})"

    @classmethod
    def of(cls, metadata: TrActMetadata, history: list[dict[str, Any]] | None = None) -> RunResults:
        """The results a checkpoint's metadata records (with the run's ``history`` when there is one)."""
        return cls(
            metadata.lam, metadata.epochs, dict(metadata.metrics or {}), dict(metadata.best or {}), history or []
        )


def number(value: Any) -> str:
    """A number as a table shows it; anything else as a code span (a table cell's ``|`` escaped)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return code(value, table=True)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def shown(key: str, value: Any) -> str:
    """The value of metric ``key``: a score in percent (``91.23%``), anything else as :func:`number`."""
    score = metric(key)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if score is None or not is_number or not math.isfinite(value):
        return number(value)
    return score.shown(value)


def _difference(key: str, ours: float, theirs: float) -> str:
    if metric(key) is not None:
        return f"{100 * (ours - theirs):+.2f} points"
    return f"{ours - theirs:+.4g}"


def _metric_keys(*dicts: dict[str, Any]) -> list[str]:
    keys = {key for d in dicts for key, value in d.items() if key != "epoch" and isinstance(value, int | float)}
    return [key for key in METRIC_ORDER if key in keys] + sorted(keys - set(METRIC_ORDER))


def _best(results: RunResults, key: str) -> str:
    if key not in results.best:
        return ""
    epoch = results.best.get("epoch")
    return shown(key, results.best[key]) + (f" (epoch {number(epoch)})" if epoch is not None else "")


def results_section(results: RunResults, baseline: RunResults | None, task: Task) -> str:
    """The results table (and, with a vanilla ``baseline``, the comparison and the speed-up sentence)."""
    if not (results.final or results.best):
        return "No metrics were recorded with this checkpoint."
    runs = [run for run in (baseline, results) if run is not None]
    compare = baseline is not None

    def row(label: str, cells: list[str], delta: str = "") -> str:
        return "| " + " | ".join([label, *cells, *([delta] if compare else [])]) + " |"

    lines = [row("Metric", [run.label for run in runs], "TrAct − vanilla")]
    lines.append("|" + "---|" * (len(runs) + 1 + compare))
    lines.append(row("Epochs", [number(run.epochs) if run.epochs else "" for run in runs]))
    for key in _metric_keys(*(run.final for run in runs), *(run.best for run in runs)):
        final = [run.final.get(key) for run in runs]
        delta = ""
        if compare and all(isinstance(value, int | float) for value in final):
            delta = _difference(key, final[1], final[0])
        name = word(key, table=True)
        lines.append(row(f"Final {name}", [shown(key, value) if value is not None else "" for value in final], delta))
        if any(key in run.best for run in runs):
            lines.append(row(f"{name} at the best epoch", [_best(run, key) for run in runs]))
    if baseline is not None:
        lines += ["", speedup(baseline, results, task.main_metric)]
    return "\n".join(lines).rstrip()


def speedup(baseline: RunResults, tract: RunResults, key: str) -> str:
    """When TrAct first reached the vanilla run's final main metric."""
    if key not in baseline.final or key not in tract.final:
        return ""
    target = baseline.final[key]
    reached = next(
        (row.get("epoch") for row in tract.history if isinstance(row.get(key), int | float) and row[key] >= target),
        None,
    )
    name = word(key)
    if reached is None:
        return f"TrAct did not reach the vanilla run's final {name} ({shown(key, target)}) within its epochs."
    return (
        f"TrAct reached the vanilla run's final {name} ({shown(key, target)}, after {number(baseline.epochs)} "
        f"epochs) at epoch {number(reached)}."
    )

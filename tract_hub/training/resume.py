"""What ``--resume`` may change in a run's recipe, and what it refuses.

A resumed run continues the trained epochs, so anything that decided how they were trained (model, data,
optimizer, batch, seed, lambda, ...) must stay. A few keys only say how much longer to train or how the run
is carried out, and may change:

* ``train.epochs``: a longer (or shorter) run. The learning-rate schedule is recomputed for the new length and
  continues where a run of that length would be at this step (a cosine or step schedule thus jumps); the
  epochs already trained keep the learning rates they had (``metrics.jsonl``'s ``lr``), and ``environment.json``
  records the change.
* ``train.eval_every``, ``train.eval_batch_size``, ``train.workers``: when and how evaluation and loading run.
* ``data.root``, ``data.download``: where the same data set lives, whether it may be downloaded.
* ``description``.

Example:
    >>> saved = {"train": {"epochs": 10, "seed": 0}, "lam": 0.1}
    >>> [str(change) for change in resume_changes(saved, {"train": {"epochs": 20, "seed": 0}, "lam": 0.1})]
    ['train.epochs (10 -> 20)']
    >>> resume_changes(saved, {"train": {"epochs": 10, "seed": 1}, "lam": 0.1})
    Traceback (most recent call last):
    ...
    tract_hub.errors.RecipeError: --resume: the recipe differs from the run's recipe at train.seed (0 -> 1): ...
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import RecipeError

#: Keys that may differ on --resume, and why that is safe.
RESUMABLE: dict[str, str] = {
    "train.epochs": "the run's length; the schedule is recomputed from the current step",
    "train.eval_every": "when evaluation runs",
    "train.eval_batch_size": "evaluation batch size (the metric does not depend on it)",
    "train.workers": "data loader processes",
    "data.root": "where the same data set lives",
    "data.download": "whether the data set may be downloaded",
    "description": "free text",
}


class Change(NamedTuple):
    """One key whose value differs: ``train.epochs (10 -> 20)``."""

    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key} ({self.old!r} -> {self.new!r})"


def differences(saved: Any, current: Any, prefix: str = "") -> list[Change]:
    """Every leaf where two plain-data trees differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [d for key in keys for d in differences(saved.get(key), current.get(key), f"{prefix}{key}.")]
    return [] if saved == current else [Change(prefix.rstrip("."), saved, current)]


def resume_changes(saved: dict[str, Any], current: dict[str, Any], source: str = "the run's recipe") -> list[Change]:
    """The allowed changes between a run's saved recipe and the one it is resumed with; :class:`RecipeError`
    naming every other change and why it is refused."""
    found = differences(saved, current)
    refused = [str(change) for change in found if change.key not in RESUMABLE]
    if refused:
        raise RecipeError(
            f"--resume: the recipe differs from {source} at {', '.join(refused[:8])}: these keys decided how the "
            f"trained epochs were trained, so the run cannot continue under them. --resume may change only "
            f"{', '.join(RESUMABLE)}; start a new run directory (--run-dir) for a different recipe"
        )
    return found

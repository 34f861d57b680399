"""``--resume``: what a checkpoint holds besides the weights, restoring it, and what the recipe may change.

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

A checkpoint's ``training_state.pt`` (:func:`training_state`) holds the optimizer(s), scheduler(s), GradScaler,
the epoch, step, best scores and RNG states; :func:`restore_training` loads it, with the weights and the EMA
weights, into a freshly built trainer, and :func:`continue_schedule` moves the learning rate to where a run of
the new length is. ``environment.json`` keeps the changes of every resume (:func:`resume_history`).

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

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..artifacts.run_dir import RunDirectory
from ..errors import InvalidArgumentError, RecipeError, TrActStateError
from . import checkpoint
from .ema import WeightEma
from .progress import plural
from .recipe import Recipe, parse_yaml, recipe_to_data

logger = logging.getLogger(__name__)

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


def check_run_directory(run_dir: RunDirectory, recipe: Recipe, *, resume: bool) -> list[Change]:
    """The recipe changes of a resumed run (none for a new one); refuses a run directory that already holds a
    run unless resuming, and a resumed recipe that changes what :data:`RESUMABLE` does not name."""
    if not run_dir.recipe_path.exists():
        return []
    if not resume:
        raise InvalidArgumentError(
            f"{run_dir.path} already holds a run; pass --resume to continue it, or choose another run directory "
            "(--run-dir)"
        )
    saved = parse_yaml(run_dir.recipe_path.read_text(encoding="utf-8"), str(run_dir.recipe_path))
    return resume_changes(saved, recipe_to_data(recipe), str(run_dir.recipe_path))


class ResumePoint(NamedTuple):
    """Where a checkpoint left a run: epochs completed, optimizer steps taken, the best evaluation so far."""

    epoch: int
    global_step: int
    best: dict[str, Any]


def training_state(
    point: ResumePoint,
    optimizers: Sequence[torch.optim.Optimizer],
    schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler],
    scaler: torch.amp.GradScaler,
) -> dict[str, Any]:
    """``training_state.pt``: everything but the weights that a resumed run needs (plain tensors and containers,
    so that ``torch.load(weights_only=True)`` reads it)."""
    return {
        "epoch": point.epoch,
        "global_step": point.global_step,
        "optimizers": [optimizer.state_dict() for optimizer in optimizers],
        "schedulers": [scheduler.state_dict() for scheduler in schedulers],
        "scaler": scaler.state_dict(),
        "best": dict(point.best),
        "rng": checkpoint.capture_rng_state(),
    }


def restore_training(
    directory: Path,
    *,
    model: nn.Module,
    ema: WeightEma | None,
    optimizers: Sequence[torch.optim.Optimizer],
    schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler],
    scaler: torch.amp.GradScaler,
) -> ResumePoint:
    """Load a checkpoint directory's weights (and EMA weights) and :func:`training_state` into a freshly built
    trainer's parts, and restore the RNGs; returns where the run continues."""
    model.load_state_dict(checkpoint.load_model_state(directory), strict=True)
    if ema is not None:
        ema_state = checkpoint.load_ema_state(directory)
        if ema_state is None:
            raise TrActStateError(f"{directory}: the recipe keeps EMA weights (train.ema) but the checkpoint has none")
        ema.load_state_dict(ema_state)
    state = checkpoint.load_training_state(directory)
    if len(state["optimizers"]) != len(optimizers):
        raise TrActStateError(f"{directory}: {len(state['optimizers'])} optimizer states for {len(optimizers)}")
    for optimizer, saved in zip(optimizers, state["optimizers"], strict=True):
        optimizer.load_state_dict(saved)
    for scheduler, saved in zip(schedulers, state["schedulers"], strict=True):
        scheduler.load_state_dict(saved)
    scaler.load_state_dict(state["scaler"])
    checkpoint.restore_rng_state(state["rng"])
    return ResumePoint(int(state["epoch"]), int(state["global_step"]), dict(state["best"]))


def continue_schedule(
    changes: Sequence[Change],
    point: ResumePoint,
    recipe: Recipe,
    optimizers: Sequence[torch.optim.Optimizer],
    schedulers: Sequence[torch.optim.lr_scheduler.LambdaLR],
    run_path: Path,
) -> None:
    """After restoring ``point``: with a changed ``train.epochs``, the learning rate where the schedule of the
    new length is at this step (the schedulers were built for the new length; their state is the step)."""
    if not changes:
        return
    logger.info("--resume with changes: %s", "; ".join(map(str, changes)))
    epochs = next((change for change in changes if change.key == "train.epochs"), None)
    if epochs is None:
        return
    length = recipe.train.epochs
    if point.epoch > length:
        raise RecipeError(
            f"--resume: train.epochs={length} is fewer than the {plural(point.epoch, 'epoch')} already trained "
            f"in {run_path}; give train.epochs >= {point.epoch}"
        )
    before = optimizers[0].param_groups[0]["lr"]
    for optimizer, scheduler in zip(optimizers, schedulers, strict=True):
        for group, base_lr, factor in zip(
            optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base_lr * factor(scheduler.last_epoch)
    after = optimizers[0].param_groups[0]["lr"]
    logger.log(
        logging.WARNING if after != before else logging.INFO,
        "--resume: train.epochs %d -> %d: the %s schedule is recomputed for %s; the learning rate continues "
        "at %.4g (it was %.4g), where a run of %s is at step %d",
        epochs.old,
        length,
        recipe.schedule.name,
        plural(length, "epoch"),
        after,
        before,
        plural(length, "epoch"),
        point.global_step,
    )


def resume_history(environment_path: Path, start: int, changes: Sequence[Change]) -> list[dict[str, Any]]:
    """The recipe changes of every resume so far (from the previous ``environment.json``), this one's added."""
    history: list[dict[str, Any]] = []
    if start and environment_path.is_file():
        try:
            previous = json.loads(environment_path.read_text(encoding="utf-8"))
            history = list(previous.get("resume_changes") or [])
        except (json.JSONDecodeError, AttributeError, TypeError):
            logger.warning("%s is not readable JSON; earlier resume changes are not carried over", environment_path)
    if changes:
        history.append({"after_epoch": start, "changes": [str(change) for change in changes]})
    return history

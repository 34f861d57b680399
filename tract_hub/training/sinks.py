"""Where the trainer's figures go besides ``metrics.jsonl``: a CSV summary, TensorBoard, Weights & Biases.

* ``summary.csv`` (always): one row per epoch, the columns of ``metrics.jsonl`` (as timm's ``summary.csv``),
  rewritten from ``metrics.jsonl`` after every epoch, so a resumed run's CSV never holds a dropped epoch.
* TensorBoard (``RUN_DIR/tensorboard/``, when the optional ``tensorboard`` package is installed; one log line
  says so when it is not): the step figures at every log line and each epoch's row, all at the optimizer step
  (a resumed run purges the events after its checkpoint).
* Weights & Biases (only when asked for, ``--wandb``; an error if ``wandb`` is not installed).

Values are those of ``metrics.jsonl`` (accuracies as fractions in [0, 1]); only the rank that writes files
(rank 0) opens sinks.

Example:
    >>> import tempfile
    >>> from tract_hub.artifacts.run_dir import RunDirectory
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.append_metrics({"epoch": 1, "train_loss": 0.5, "top1": 0.75, "tract": {"lam": 0.1}})
    >>> sinks = open_sinks(run, ReportOptions(tensorboard=False), config={}, start_step=0)
    >>> sinks.epoch(1, 4, run.read_metrics())
    >>> sinks.close()
    >>> run.summary_csv_path.read_text().splitlines()
    ['epoch,top1,tract_lam,train_loss', '1,0.75,0.1,0.5']
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..artifacts.files import write_text_atomic
from ..artifacts.run_dir import RunDirectory
from ..errors import InvalidArgumentError
from .progress import DEFAULT_LOG_INTERVAL

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportOptions:
    """How a run reports, apart from what it trains (so none of it is part of the recipe)."""

    log_interval: int = DEFAULT_LOG_INTERVAL  # optimizer steps between two log lines
    tensorboard: bool | None = None  # None: when the tensorboard package is installed
    wandb: bool = False
    wandb_project: str | None = None  # default: "tract-hub"

    def __post_init__(self) -> None:
        if isinstance(self.log_interval, bool) or not isinstance(self.log_interval, int) or self.log_interval < 1:
            raise InvalidArgumentError(f"log_interval={self.log_interval!r} must be a positive number of steps")


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"tract": {"lam": 0.1}}`` -> ``{"tract_lam": 0.1}``: one column per scalar."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}_"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV: ``epoch`` first, then the columns in the order they first appear; empty cells for
    missing or null values."""
    flat = [flatten(row) for row in rows]
    columns = list(dict.fromkeys(["epoch", *(key for row in flat for key in row)]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in columns})
    return out.getvalue()


class Sinks:
    """The open sinks of one run (rank 0); every method is a no-op for the ones that are off."""

    def __init__(self, run_dir: RunDirectory, tensorboard: Any = None, wandb_run: Any = None) -> None:
        self.run_dir, self.tensorboard, self.wandb_run = run_dir, tensorboard, wandb_run

    def step(self, global_step: int, values: dict[str, float]) -> None:
        """The figures of a log line (``train/loss``, ``train/lr``, ...) at optimizer step ``global_step``."""
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, global_step)
        if self.wandb_run is not None:
            self.wandb_run.log(dict(values), step=global_step)

    def epoch(self, epoch: int, global_step: int, rows: Sequence[dict[str, Any]]) -> None:
        """After epoch ``epoch``: the CSV summary of ``rows`` (every epoch so far), the last row to the others."""
        write_text_atomic(self.run_dir.summary_csv_path, csv_text(rows))
        values = _numbers(flatten(rows[-1])) if rows else {}
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(f"epoch/{key}", value, global_step)
            self.tensorboard.flush()
        if self.wandb_run is not None:
            self.wandb_run.log({f"epoch/{key}": value for key, value in values.items()}, step=global_step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def wandb_installed() -> bool:
    return importlib.util.find_spec("wandb") is not None


def check_available(options: ReportOptions) -> None:
    """Refuse, before anything is trained, a sink that was asked for but is not installed."""
    if options.tensorboard and not tensorboard_installed():
        raise InvalidArgumentError(
            "TensorBoard logging was asked for, but the tensorboard package is not installed; "
            "pip install tensorboard (or, in tract_hub's source tree, pip install -e '.[tensorboard]'), or leave "
            "TensorBoard off"
        )
    if options.wandb and not wandb_installed():
        raise InvalidArgumentError("--wandb: the wandb package is not installed; pip install wandb, or drop --wandb")


def _open_tensorboard(run_dir: RunDirectory, wanted: bool | None, start_step: int) -> Any:
    if wanted is False:
        return None
    if not tensorboard_installed():
        logger.info("TensorBoard: not installed, no event files (pip install tensorboard to get them)")
        return None
    from torch.utils.tensorboard import SummaryWriter

    # purge_step: a resumed run hides the events a previous attempt wrote after its checkpoint
    writer = SummaryWriter(str(run_dir.tensorboard_dir), purge_step=start_step or None)
    logger.info("TensorBoard: tensorboard --logdir %s", run_dir.tensorboard_dir)
    return writer


def _open_wandb(run_dir: RunDirectory, options: ReportOptions, config: dict[str, Any], start_step: int) -> Any:
    if not options.wandb:
        return None
    import wandb

    return wandb.init(
        project=options.wandb_project or "tract-hub",
        name=run_dir.path.name,
        dir=str(run_dir.path),
        config={**config, "resumed_at_step": start_step or None},
    )


def open_sinks(run_dir: RunDirectory, options: ReportOptions, *, config: dict[str, Any], start_step: int) -> Sinks:
    """The sinks ``options`` asks for (``config``: the resolved recipe, for W&B); see :func:`check_available`."""
    check_available(options)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    tensorboard = _open_tensorboard(run_dir, options.tensorboard, start_step)
    try:
        wandb_run = _open_wandb(run_dir, options, config, start_step)
    except Exception:
        if tensorboard is not None:
            tensorboard.close()
        raise
    return Sinks(run_dir, tensorboard, wandb_run)

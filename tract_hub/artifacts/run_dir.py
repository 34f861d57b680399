"""The run directory: what the trainer writes and what ``tract-hub compare``, fine-tuning and the hub read.

::

    RUN_DIR/recipe.yaml        the resolved recipe, every key, sorted
    RUN_DIR/environment.json   versions, device, world size, precision, TrAct's mode and why
    RUN_DIR/metrics.jsonl      one JSON object per epoch
    RUN_DIR/summary.csv        the same rows as CSV (as timm's summary.csv)
    RUN_DIR/summary.json       the run in one object (:class:`RunSummary`, format_version 1)
    RUN_DIR/checkpoints/{last,best}/   model.safetensors + training_state.pt (+ model_ema.safetensors)
    RUN_DIR/plots/curves.png
    RUN_DIR/tensorboard/       TensorBoard event files (when tensorboard is installed)

:class:`RunDirectory` is the only code that knows these paths; it writes them (atomically) and reads them back
(validated: an unknown key, a wrong type or a newer format version is refused, naming the file). Every file is
read through :mod:`.reading`: a regular file inside the run directory, bounded in size and nesting.

Example:
    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.append_metrics({"epoch": 1, "top1": 0.5})
    >>> run.write_summary(RunSummary(model=ModelRecord("timm:resnet18"), epochs=1, final={"top1": 0.5}))
    >>> record = run.read()
    >>> record.summary.epochs, [row["top1"] for row in record.history], record.main_metric
    (1, [0.5], 'top1')
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..errors import DataError, TrActError
from .datasets import task_of
from .files import json_text, write_text_atomic
from .reading import confined_file, parse_json, parse_yaml, read_confined_text
from .rotation import newest_complete
from .schema import from_data, to_data
from .task import Task

logger = logging.getLogger(__name__)

#: The version of ``summary.json`` this code writes and reads.
SUMMARY_FORMAT_VERSION = 1

WEIGHTS_FILE = "model.safetensors"
EMA_WEIGHTS_FILE = "model_ema.safetensors"  # the EMA of the weights (train.ema), same keys as WEIGHTS_FILE
TRAINING_STATE_FILE = "training_state.pt"

#: Which checkpoint of a run directory: ``best`` (the best main metric so far) or ``last`` (the newest epoch).
CheckpointName = Literal["best", "last"]
BEST: CheckpointName = "best"
LAST: CheckpointName = "last"
CHECKPOINTS: tuple[CheckpointName, ...] = get_args(CheckpointName)

#: The longest metrics.jsonl read (a row is about 300 bytes: some 200,000 epochs).
MAX_METRICS_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ModelRecord:
    """The model a run trained: ``architecture`` (``"timm:<arch>"`` or ``"torchvision:<builder>"``; for a
    detector, its backbone) with constructor ``kwargs``, and the wrappers of the paper's ablations."""

    architecture: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    detector: str | None = None
    input_norm: str | None = None

    @property
    def wrappers(self) -> list[str]:
        """The wrappers around the architecture (a detector, an input normalization), by key."""
        return [key for key in ("detector", "input_norm") if getattr(self, key)]


@dataclass(frozen=True)
class RunSummary:
    """``summary.json``: the run in one object."""

    model: ModelRecord
    format_version: int = SUMMARY_FORMAT_VERSION
    name: str | None = None
    recipe_name: str | None = None
    dataset: str | None = None
    num_classes: int | None = None
    lam: float | None = None  # TrAct's lambda; None: the vanilla run
    exact: bool = True  # exact mode (TrAct of each step's whole batch, the default); False: per backward
    first_layers: tuple[str, ...] = ()
    epochs: int | None = None  # epochs completed
    complete: bool | None = None  # all planned epochs done
    diverged_at_epoch: int | None = None
    final: dict[str, Any] = field(default_factory=dict)  # the last evaluated epoch's metrics (number or null)
    best: dict[str, Any] = field(default_factory=dict)  # the best epoch and its metrics
    license: str | None = None  # for the model card (default: mit)

    def __post_init__(self) -> None:
        _check_summary_version(self.format_version)
        if self.lam is not None and not (math.isfinite(self.lam) and self.lam > 0):
            raise DataError(f"lam={self.lam!r}: expected a positive number, or null for a vanilla run")

    @property
    def task(self) -> Task:
        return task_of(self.dataset)

    def to_json(self) -> dict[str, Any]:
        return to_data(self)


def _check_summary_version(version: Any) -> None:
    if version != SUMMARY_FORMAT_VERSION:
        raise DataError(
            f"format_version {version!r}: this tract_hub reads run format {SUMMARY_FORMAT_VERSION}; train the run "
            "again with this version (tract-hub train), or read it with the tract_hub version that wrote it"
        )


@dataclass(frozen=True)
class Run:
    """A run directory, read: its summary, resolved recipe (None if missing) and per-epoch metrics."""

    directory: Path
    summary: RunSummary
    recipe: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.summary.name or self.directory.name

    @property
    def is_tract(self) -> bool:
        return self.summary.lam is not None

    @property
    def label(self) -> str:
        """``"name (vanilla)"`` or ``"name (TrAct λ=0.1)"``."""
        lam = self.summary.lam
        return f"{self.name} ({'vanilla' if lam is None else f'TrAct λ={lam}'})"

    @property
    def main_metric(self) -> str:
        return self.summary.task.main_metric

    def weights(self, which: CheckpointName = BEST) -> Path:
        """The weights file of the ``best`` or ``last`` checkpoint; :class:`DataError` if it is missing."""
        return RunDirectory(self.directory).weights(which)


class RunDirectory:
    """Paths, writers and readers of one run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def holds_run(cls, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` looks like a finished-epoch run directory (a summary and a best checkpoint)."""
        run = cls(path)
        best = run.checkpoint(BEST)
        return run.summary_path.is_file() and ((newest_complete(best) or best) / WEIGHTS_FILE).is_file()

    # -- paths ---------------------------------------------------------------------------------------------
    @property
    def recipe_path(self) -> Path:
        return self.path / "recipe.yaml"

    @property
    def environment_path(self) -> Path:
        return self.path / "environment.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def summary_csv_path(self) -> Path:
        return self.path / "summary.csv"

    @property
    def curves_path(self) -> Path:
        return self.path / "plots" / "curves.png"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    def checkpoint(self, which: CheckpointName) -> Path:
        """The ``best`` or ``last`` checkpoint directory."""
        if which not in CHECKPOINTS:
            raise DataError(f"checkpoint {which!r} is not one of {CHECKPOINTS}")
        return self.path / "checkpoints" / which

    def weights(self, which: CheckpointName = BEST, *, ema: bool = False) -> Path:
        """The weights file of the newest complete ``best`` or ``last`` checkpoint (the rotation of
        :mod:`.rotation` may hold it under ``.best.new`` or ``.best.old`` after a kill), with ``ema`` its EMA
        weights; :class:`DataError` if it is missing."""
        folder = self.checkpoint(which)
        folder = newest_complete(folder) or folder
        path = folder / (EMA_WEIGHTS_FILE if ema else WEIGHTS_FILE)
        if ema and not path.is_file() and (folder / WEIGHTS_FILE).is_file():
            raise DataError(
                f"run {str(self.path)!r} has no EMA weights ({path} is missing); it was trained without "
                "train.ema (--model-ema)"
            )
        if not path.is_file():
            raise DataError(
                f"run {str(self.path)!r} has no {which} checkpoint ({path} is missing); the run did not finish "
                "an epoch, or its checkpoints were moved"
            )
        return confined_file(path, self.path, error=DataError)

    # -- writers -------------------------------------------------------------------------------------------
    def write_recipe(self, text: str) -> None:
        write_text_atomic(self.recipe_path, text)

    def write_environment(self, environment: dict[str, Any]) -> None:
        write_text_atomic(self.environment_path, json_text(environment))

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep the rows of epochs ``<= last_epoch`` (a resumed run re-trains the later ones; 0 keeps none)."""
        rows = [row for row in self.read_metrics() if row["epoch"] <= last_epoch] if self.metrics_path.exists() else []
        write_text_atomic(self.metrics_path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))

    def write_summary(self, summary: RunSummary) -> None:
        write_text_atomic(self.summary_path, json_text(summary.to_json()))

    # -- readers -------------------------------------------------------------------------------------------
    def _missing(self, path: Path) -> DataError:
        return DataError(
            f"{str(self.path)!r} has no {path.name} ({path} is missing), so it is not a run directory written by "
            "`tract-hub train`; give such a run directory (or, to pull or from_pretrained, a checkpoint directory)"
        )

    def read_summary(self) -> RunSummary:
        """``summary.json``, validated; :class:`DataError` names what is missing or malformed."""
        if not self.path.is_dir():
            raise DataError(
                f"run directory {str(self.path)!r} does not exist; give the directory tract-hub train wrote"
            )
        if not self.summary_path.is_file():
            raise self._missing(self.summary_path)
        text = read_confined_text(self.summary_path, self.path, error=DataError)
        data = parse_json(text, str(self.summary_path), error=DataError)
        try:
            _check_summary_version(data.get("format_version") if isinstance(data, dict) else None)
            return from_data(RunSummary, data, error=DataError)
        except TrActError as error:
            raise DataError(f"{self.summary_path}: {error}") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl``; :class:`DataError` if it is missing or a line is not a JSON object."""
        if not self.metrics_path.is_file():
            raise self._missing(self.metrics_path)
        rows = []
        text = read_confined_text(self.metrics_path, self.path, error=DataError, limit=MAX_METRICS_BYTES)
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            row = parse_json(line, f"{self.metrics_path}:{number}", error=DataError)
            if not isinstance(row, dict):
                raise DataError(f"{self.metrics_path}:{number} is not a JSON object")
            rows.append(row)
        return rows

    def read_recipe(self) -> dict[str, Any] | None:
        """``recipe.yaml`` as plain data, None (with a warning) if the run has none."""
        if not self.recipe_path.is_file():
            logger.warning("run %s has no recipe.yaml; its card will not show the recipe", self.path)
            return None
        text = read_confined_text(self.recipe_path, self.path, error=DataError)
        recipe = parse_yaml(text, str(self.recipe_path), error=DataError)
        if not isinstance(recipe, dict):
            raise DataError(f"{self.recipe_path} holds a YAML {type(recipe).__name__}, not a mapping")
        return recipe

    def read(self, *, need_history: bool = False) -> Run:
        """Summary, recipe and metrics; without ``need_history`` a missing metrics.jsonl is a warning."""
        summary = self.read_summary()
        if need_history or self.metrics_path.is_file():
            history = self.read_metrics()
        else:
            logger.warning("run %s has no metrics.jsonl; it has no training curves", self.path)
            history = []
        return Run(self.path, summary, self.read_recipe(), history)

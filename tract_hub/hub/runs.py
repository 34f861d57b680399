"""Reading a run directory written by the trainer (``summary.json``, ``recipe.yaml``, ``metrics.jsonl``, checkpoints).

The layout is the contract between the trainer and the hub::

    RUN_DIR/summary.json  recipe.yaml  metrics.jsonl  environment.json
           checkpoints/{best,last}/model.safetensors  plots/curves.png

Example:
    >>> from tract_hub.hub.runs import read_run
    >>> read_run("/nonexistent")
    Traceback (most recent call last):
    ...
    tract_hub.errors.HubError: run directory '/nonexistent' does not exist; ...
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import HubError
from .card import RunResults
from .layout import WEIGHTS_NAME

logger = logging.getLogger(__name__)

#: The version of ``summary.json`` this reader understands.
RUN_FORMAT_VERSION = 1
CHECKPOINTS = ("best", "last")


@dataclass(frozen=True)
class RunRecord:
    """What a run directory holds: its summary, resolved recipe and per-epoch metrics."""

    directory: Path
    summary: dict[str, Any]
    recipe: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.summary.get("name") or self.directory.name)

    @property
    def architecture(self) -> str:
        return self.summary["model"]["architecture"]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return dict(self.summary["model"].get("kwargs") or {})

    @property
    def lam(self) -> float | None:
        return self.summary.get("lam")

    @property
    def dataset(self) -> str | None:
        return self.summary.get("dataset")

    def weights(self, which: str = "best") -> Path:
        """The weights file of the ``best`` or ``last`` checkpoint; :class:`HubError` if it is missing."""
        if which not in CHECKPOINTS:
            raise HubError(f"checkpoint {which!r} is not one of {CHECKPOINTS}")
        path = self.directory / "checkpoints" / which / WEIGHTS_NAME
        if not path.is_file():
            raise HubError(
                f"run {str(self.directory)!r} has no {which} checkpoint ({path} is missing); the run did not finish "
                "an epoch, or its checkpoints were moved"
            )
        return path

    def results(self) -> RunResults:
        """The run's figures for a model card."""
        return RunResults(
            lam=self.lam,
            epochs=self.summary.get("epochs"),
            final=dict(self.summary.get("final") or {}),
            best=dict(self.summary.get("best") or {}),
            history=list(self.history),
        )


def _read_summary(directory: Path) -> dict[str, Any]:
    path = directory / "summary.json"
    if not path.is_file():
        raise HubError(
            f"{str(directory)!r} has no summary.json; give a run directory written by `tract-hub train` (or a "
            "checkpoint directory to tract-hub pull / from_pretrained)"
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise HubError(f"{str(path)!r} is not valid JSON ({error})") from error
    if not isinstance(summary, dict):
        raise HubError(f"{str(path)!r} holds a JSON {type(summary).__name__}, not an object")
    version = summary.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise HubError(
            f"{str(path)!r} has format_version {version!r}; this tract_hub reads run format {RUN_FORMAT_VERSION}"
        )
    model = summary.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("architecture"), str):
        raise HubError(f"{str(path)!r} lacks model.architecture ('timm:<arch>' or 'torchvision:<builder>')")
    if not isinstance(model.get("kwargs", {}), dict):
        raise HubError(f"{str(path)!r}: model.kwargs is not an object")
    lam = summary.get("lam")
    if lam is not None and (isinstance(lam, bool) or not isinstance(lam, int | float)):
        raise HubError(f"{str(path)!r}: lam is {lam!r}; expected a number, or null for a vanilla run")
    return summary


def _read_recipe(directory: Path) -> dict[str, Any] | None:
    path = directory / "recipe.yaml"
    if not path.is_file():
        logger.warning("run %s has no recipe.yaml; its card will not show the recipe", directory)
        return None
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise HubError(f"{str(path)!r} is not valid YAML ({error})") from error
    if not isinstance(recipe, dict):
        raise HubError(f"{str(path)!r} holds a YAML {type(recipe).__name__}, not a mapping")
    return recipe


def _read_history(directory: Path) -> list[dict[str, Any]]:
    path = directory / "metrics.jsonl"
    if not path.is_file():
        logger.warning("run %s has no metrics.jsonl; its card will have no training curves", directory)
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise HubError(f"{str(path)!r} line {number} is not valid JSON ({error})") from error
        if not isinstance(row, dict):
            raise HubError(f"{str(path)!r} line {number} is not a JSON object")
        rows.append(row)
    return rows


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """Read a run directory; :class:`HubError` names the file that is missing or malformed."""
    directory = Path(run_dir)
    if not directory.is_dir():
        raise HubError(f"run directory {str(run_dir)!r} does not exist; give the directory `tract-hub train` wrote")
    return RunRecord(directory, _read_summary(directory), _read_recipe(directory), _read_history(directory))

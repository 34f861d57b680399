"""The run directory: what the trainer writes and what ``tract-hub compare`` and the hub read.

::

    RUN_DIR/recipe.yaml        the resolved recipe, every key, sorted
    RUN_DIR/environment.json   versions, device, world size, precision, TrAct's mode and why
    RUN_DIR/metrics.jsonl      one JSON object per epoch
    RUN_DIR/summary.json       the run in one object (format_version 1)
    RUN_DIR/checkpoints/{last,best}/   model.safetensors + training_state.pt
    RUN_DIR/plots/curves.png

Example:
    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.append_metrics({"epoch": 1, "top1": 0.5})
    >>> [row["top1"] for row in run.read_metrics()]
    [0.5]
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError

SUMMARY_FORMAT_VERSION = 1


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


class RunDirectory:
    """Paths and readers/writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # paths
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
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best"

    @property
    def curves_path(self) -> Path:
        return self.path / "plots" / "curves.png"

    # writers
    def write_recipe(self, text: str) -> None:
        _write_atomic(self.recipe_path, text)

    def write_environment(self, environment: dict[str, Any]) -> None:
        _write_atomic(self.environment_path, dump_json(environment))

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep the rows of epochs ``<= last_epoch`` (a resumed run re-trains the later ones)."""
        rows = [row for row in self.read_metrics() if row["epoch"] <= last_epoch] if self.metrics_path.exists() else []
        _write_atomic(self.metrics_path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.summary_path, dump_json(summary))

    # readers
    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            raise DataError(f"{self.metrics_path} is missing: {self.path} is not a tract-hub run directory")
        rows = []
        for number, line in enumerate(self.metrics_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{self.metrics_path}:{number} is not JSON ({error})") from None
        return rows

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.is_file():
            raise DataError(f"{self.summary_path} is missing: {self.path} is not a tract-hub run directory")
        try:
            summary = json.loads(self.summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{self.summary_path} is not JSON ({error})") from None
        version = summary.get("format_version")
        if version != SUMMARY_FORMAT_VERSION:
            raise DataError(
                f"{self.summary_path} has format_version {version!r}; this tract_hub reads {SUMMARY_FORMAT_VERSION}"
            )
        return summary


def environment_record(
    *, device: torch.device, world_size: int, precision: str, exact: bool, exact_reason: str, extra: dict | None = None
) -> dict[str, Any]:
    """Versions, device and the settings that change numerics, for ``environment.json``."""
    import timm
    import torchvision

    from .._version import __version__

    record: dict[str, Any] = {
        "versions": {
            "tract_hub": __version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
            "python": platform.python_version(),
        },
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "world_size": world_size,
        "precision": precision,
        "tract_exact": {"enabled": exact, "reason": exact_reason},
    }
    record.update(extra or {})
    return record

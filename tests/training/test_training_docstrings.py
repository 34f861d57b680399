"""The examples in the training package's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import tempfile
from pathlib import Path

import pytest

MODULES = [
    "tract_hub.training",
    "tract_hub.training.checkpoint",
    "tract_hub.training.compare",
    "tract_hub.training.data",
    "tract_hub.training.data.digits",
    "tract_hub.training.data.transforms",
    "tract_hub.training.demo_recipe",
    "tract_hub.training.detection_map",
    "tract_hub.training.detector",
    "tract_hub.training.distributed",
    "tract_hub.training.evaluation",
    "tract_hub.training.input_norm",
    "tract_hub.training.loop",
    "tract_hub.training.modeling",
    "tract_hub.training.optim",
    "tract_hub.training.progress",
    "tract_hub.training.recipe",
    "tract_hub.training.objective",
    "tract_hub.training.environment",
    "tract_hub.training.ema",
    "tract_hub.training.resume",
    "tract_hub.training.sinks",
    "tract_hub.training.validate",
]
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY)  # examples name recipes/demo_digits.yaml
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # their mkdtemp() land in tmp_path
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"

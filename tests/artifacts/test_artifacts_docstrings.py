"""The examples in the docstrings of the shared artifacts run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import tempfile
from pathlib import Path

import pytest

MODULES = [
    "tract_hub.artifacts",
    "tract_hub.artifacts.checkpoint",
    "tract_hub.artifacts.checkpoint.fetch",
    "tract_hub.artifacts.checkpoint.heads",
    "tract_hub.artifacts.checkpoint.layout",
    "tract_hub.artifacts.checkpoint.read",
    "tract_hub.artifacts.checkpoint.spec",
    "tract_hub.artifacts.checkpoint.weights",
    "tract_hub.artifacts.checkpoint.write",
    "tract_hub.artifacts.curves",
    "tract_hub.artifacts.files",
    "tract_hub.artifacts.metadata",
    "tract_hub.artifacts.run_dir",
    "tract_hub.artifacts.schema",
    "tract_hub.artifacts.task",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' mkdtemp() land in tmp_path
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"

"""The examples in the hub's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import tempfile
from pathlib import Path

import pytest

MODULES = [
    "tract_hub.hub",
    "tract_hub.hub.card",
    "tract_hub.hub.card_data",
    "tract_hub.hub.export",
    "tract_hub.hub.identify",
    "tract_hub.hub.pull",
    "tract_hub.hub.push",
    "tract_hub.hub.save",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' mkdtemp() land in tmp_path
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"

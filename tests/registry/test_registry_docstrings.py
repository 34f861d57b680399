"""The examples in the registry's docstrings (and the ``locate`` command's module) run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tract_hub.registry",
    "tract_hub.registry.inputs",
    "tract_hub.registry.isolation",
    "tract_hub.registry.locate",
    "tract_hub.registry.meta_ops",
    "tract_hub.registry.rules",
    "tract_hub.registry.trace",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"

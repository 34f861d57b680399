"""The examples in the models package's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tract_hub.models

MODULES = ["tract_hub.models"] + [
    f"tract_hub.models.{info.name}" for info in pkgutil.iter_modules(tract_hub.models.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
    assert tried > 0, f"{name} has no docstring example"

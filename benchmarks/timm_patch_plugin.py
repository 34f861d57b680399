"""pytest plugin for ``benchmarks/timm_model_tests.py``: every model that timm's own tests build is TrAct-patched.

Loaded with ``-p timm_patch_plugin`` (``benchmarks/`` on ``PYTHONPATH``). The test modules' ``create_model`` is
wrapped so that each model is passed to ``tract_hub.patch`` right after timm builds it; a model that tract_hub
refuses runs its test unpatched, and every outcome of ``patch`` is appended as one JSON line to
``$TIMM_PATCH_RECORD``. ``$TIMM_PATCH_MODELS`` (a file of model names, one per line) keeps only the tests of those
models (tests without a ``model_name`` parameter always run).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import timm

import tract_hub
from tract_hub.errors import TrActError


def _record(entry: dict[str, str]) -> None:
    path = os.environ.get("TIMM_PATCH_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")


def patched_create_model(create: Callable[..., Any], test: str) -> Callable[..., Any]:
    """``create`` (timm's ``create_model``) followed by ``tract_hub.patch`` on what it built."""

    @functools.wraps(create)
    def create_and_patch(*args: Any, **kwargs: Any) -> Any:
        model = create(*args, **kwargs)
        name = str(args[0] if args else kwargs.get("model_name"))
        try:
            tract_hub.patch(model)
        except TrActError as error:
            _record({"test": test, "model": name, "patch": f"refused: {type(error).__name__}: {error}"})
        else:
            _record({"test": test, "model": name, "patch": "patched"})
        return model

    return create_and_patch


@pytest.fixture(autouse=True)
def _patch_every_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if getattr(request.module, "create_model", None) is timm.create_model:
        patched = patched_create_model(timm.create_model, request.node.nodeid)
        monkeypatch.setattr(request.module, "create_model", patched)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = os.environ.get("TIMM_PATCH_MODELS")
    if not path:
        return
    with open(path, encoding="utf-8") as file:
        wanted = set(file.read().split())
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("model_name") if callspec is not None else None
        (keep if name is None or name in wanted else drop).append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)

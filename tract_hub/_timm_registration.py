"""tract_hub's CIFAR models registered with timm as soon as timm is imported, without importing timm ourselves.

``import tract_hub`` must stay light (no torch, no timm) so that ``tract-hub --help`` answers at once, yet
``import tract_hub`` followed by ``timm.create_model("tract_resnet18_cifar")`` must work. So: if timm is
already imported, :mod:`tract_hub.models` (which registers the families) is imported now; otherwise a one-shot
finder on ``sys.meta_path`` waits for ``import timm`` and imports :mod:`tract_hub.models` right after timm's own
``__init__`` has run, before the ``import timm`` statement returns.

Example:
    >>> import tract_hub, timm
    >>> timm.is_model("tract_resnet18_cifar")
    True
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

WATCHED = "timm"


def register_models() -> None:
    """Import :mod:`tract_hub.models` (its family modules register themselves with timm); never raises."""
    try:
        from . import models  # noqa: F401  (imported for its registrations)
    except Exception as error:  # a broken optional dependency must not break the user's `import timm`
        logger.warning(
            "tract_hub's CIFAR models could not be registered with timm (%s: %s); import tract_hub.models to see "
            "the full error",
            type(error).__name__,
            error,
        )


class _CallbackLoader(importlib.abc.Loader):
    """The module's own loader, followed by the callback; every other attribute is the own loader's."""

    def __init__(self, loader: Any, finder: _AfterImport) -> None:
        self._loader = loader
        self._finder = finder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._loader.exec_module(module)
        finally:  # the module keeps its own loader, as if nothing had stood between
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader
        self._finder.remove()
        self._finder.callback()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Answers only for one top-level module: finds its spec with the other finders and wraps its loader."""

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name, self.callback = name, callback
        self._local = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if fullname != self.name or getattr(self._local, "searching", False):
            return None
        self._local.searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._local.searching = False
        if spec is None or spec.loader is None:
            return None  # not installed: the import fails as it would without us
        spec.loader = _CallbackLoader(spec.loader, self)
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def after_import(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback`` once top-level module ``name`` is imported: now if it is, else right after its first
    import has run (before the ``import`` statement returns). Waiting costs one finder on ``sys.meta_path``."""
    if name in sys.modules:
        callback()
        return
    if not any(isinstance(f, _AfterImport) and f.name == name and f.callback is callback for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, callback))


def register_when_timm_is_imported() -> None:
    """Register tract_hub's models with timm now if timm is imported, else right after ``import timm``."""
    after_import(WATCHED, register_models)

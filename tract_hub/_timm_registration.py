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


class _RegisteringLoader(importlib.abc.Loader):
    """timm's own loader, followed by :func:`register_models`; every other attribute is timm's loader's."""

    def __init__(self, loader: Any, finder: _RegisterAfterTimm) -> None:
        self._loader = loader
        self._finder = finder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._loader.exec_module(module)
        finally:  # the module keeps timm's own loader, as if nothing had stood between
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader
        self._finder.remove()
        register_models()


class _RegisterAfterTimm(importlib.abc.MetaPathFinder):
    """Answers only for ``timm``: finds its spec with the other finders and wraps its loader."""

    def __init__(self) -> None:
        self._local = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if fullname != WATCHED or getattr(self._local, "searching", False):
            return None
        self._local.searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._local.searching = False
        if spec is None or spec.loader is None:
            return None  # timm is not installed: the import fails as it would without us
        spec.loader = _RegisteringLoader(spec.loader, self)
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def register_when_timm_is_imported() -> None:
    """Register tract_hub's models with timm now if timm is imported, else right after ``import timm``."""
    if WATCHED in sys.modules:
        register_models()
        return
    if not any(isinstance(finder, _RegisterAfterTimm) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterTimm())

"""tract_hub: TrAct ("TrAct: Making First-layer Pre-Activations Trainable", NeurIPS 2024) for any vision model.

Example:
    >>> import torch, tract_hub
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    >>> model = tract_hub.patch(model, lam=0.1, target="0")    # TrAct on the first layer, in place
    >>> model(torch.randn(4, 3, 8, 8)).sum().backward()         # train as usual
"""

from __future__ import annotations

import importlib
from typing import Any

from ._api import patch
from ._version import __version__
from .engine import LayerGeometry, tract_gradient
from .errors import (
    CheckpointIntegrityError,
    DataError,
    FirstLayerNotFoundError,
    HubError,
    InvalidArgumentError,
    RecipeError,
    RuleError,
    TargetNotFoundError,
    TrActError,
    TrActStateError,
    UnknownArchitectureError,
    UnsupportedLayerError,
)
from .patching import PatchedLayer, is_patched, patched_layers, unpatch

# Names served lazily from heavier rooms (they import timm / huggingface_hub only when used).
_LAZY = {
    "locate": "tract_hub.registry",
    "FirstLayer": "tract_hub.registry",
    "Rule": "tract_hub.registry",
    "register_rule": "tract_hub.registry",
    "unregister_rule": "tract_hub.registry",
    "list_rules": "tract_hub.registry",
    "save_pretrained": "tract_hub.hub",
    "from_pretrained": "tract_hub.hub",
    "push_to_hub": "tract_hub.hub",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tract_hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CheckpointIntegrityError",
    "DataError",
    "FirstLayerNotFoundError",
    "HubError",
    "InvalidArgumentError",
    "LayerGeometry",
    "PatchedLayer",
    "RecipeError",
    "RuleError",
    "TargetNotFoundError",
    "TrActError",
    "TrActStateError",
    "UnknownArchitectureError",
    "UnsupportedLayerError",
    "__version__",
    "is_patched",
    "patch",
    "patched_layers",
    "tract_gradient",
    "unpatch",
    *_LAZY,
]

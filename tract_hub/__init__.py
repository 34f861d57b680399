"""tract_hub: TrAct ("TrAct: Making First-layer Pre-Activations Trainable", NeurIPS 2024) for any vision model.

``import tract_hub`` is light: the public names below are imported on first use (torch, timm and
huggingface_hub load only when needed), and tract_hub's CIFAR models are registered with timm as soon as timm
is imported (``timm.create_model("tract_resnet18_cifar")`` works after ``import tract_hub``).

Example:
    >>> import torch, tract_hub
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    >>> model = tract_hub.patch(model, lam=0.1, target="0")    # TrAct on the first layer, in place
    >>> model(torch.randn(4, 3, 8, 8)).sum().backward()         # train as usual
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _timm_registration
from ._version import __version__
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

if TYPE_CHECKING:  # the lazily served names, for type checkers and IDEs
    from ._api import patch
    from .engine import LayerGeometry, tract_gradient
    from .hub import from_pretrained, push_to_hub, save_pretrained
    from .patching import PatchedLayer, is_patched, patched_layers, unpatch
    from .registry import FirstLayer, Rule, list_rules, locate, register_rule, unregister_rule

#: Public names, each served from its module on first use.
_LAZY = {
    "patch": "tract_hub._api",
    "LayerGeometry": "tract_hub.engine",
    "tract_gradient": "tract_hub.engine",
    "PatchedLayer": "tract_hub.patching",
    "is_patched": "tract_hub.patching",
    "patched_layers": "tract_hub.patching",
    "unpatch": "tract_hub.patching",
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

#: Subpackages reachable as attributes (``tract_hub.training.train``) without importing them first.
_SUBPACKAGES = frozenset(
    {"artifacts", "cli", "core", "demo", "engine", "hub", "models", "patching", "pretrained", "registry", "training"}
)

_timm_registration.register_when_timm_is_imported()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # served once; later lookups do not come here
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'tract_hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBPACKAGES)


__all__ = [
    "CheckpointIntegrityError",
    "DataError",
    "FirstLayer",
    "FirstLayerNotFoundError",
    "HubError",
    "InvalidArgumentError",
    "LayerGeometry",
    "PatchedLayer",
    "RecipeError",
    "Rule",
    "RuleError",
    "TargetNotFoundError",
    "TrActError",
    "TrActStateError",
    "UnknownArchitectureError",
    "UnsupportedLayerError",
    "__version__",
    "from_pretrained",
    "is_patched",
    "list_rules",
    "locate",
    "patch",
    "patched_layers",
    "push_to_hub",
    "register_rule",
    "save_pretrained",
    "tract_gradient",
    "unpatch",
    "unregister_rule",
]

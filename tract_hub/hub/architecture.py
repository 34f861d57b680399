"""Which architecture a checkpoint holds, and building it again: timm models and torchvision builders only.

A checkpoint names its architecture as timm does (``"architecture": "<timm name>"``) or, for torchvision,
``"architecture": "torchvision:<builder>"``, with the constructor's keyword arguments under ``"model_args"``.
Names are checked against ``timm.list_models()`` / ``torchvision.models.list_models()`` (never imported as a
path), and arguments that would make the constructor fetch or unpickle anything are refused.

Example:
    >>> from tract_hub.hub.architecture import ArchitectureSpec
    >>> spec = ArchitectureSpec.from_config({"architecture": "torchvision:resnet18", "model_args": {"num_classes": 3}})
    >>> spec.qualified_name, spec.model_args
    ('torchvision:resnet18', {'num_classes': 3})
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointIntegrityError, InvalidArgumentError, UnknownArchitectureError
from ..models import create_model, known_architectures, resolve_architecture
from .heads import find_torchvision_head, head_num_classes, is_timm_model
from .layout import json_safe

logger = logging.getLogger(__name__)

#: Constructor arguments a checkpoint may never set: they load weights, files or code, or place the model.
FORBIDDEN_MODEL_ARGS = frozenset(
    {
        "checkpoint_path",
        "cache_dir",
        "device",
        "dtype",
        "pretrained",
        "pretrained_cfg",
        "pretrained_cfg_overlay",
        "progress",
        "weights",
        "weights_backbone",
    }
)


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture (``source`` "timm" or "torchvision", its registry ``name``) and its constructor kwargs."""

    source: str
    name: str
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.source}:{self.name}"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ArchitectureSpec:
        """The architecture a ``config.json`` names; refuses unknown names and unsafe arguments."""
        name = config.get("architecture")
        if not isinstance(name, str) or not name:
            raise UnknownArchitectureError(
                f"config.json names the architecture {name!r}; expected a timm architecture name or "
                "'torchvision:<builder>'"
            )
        qualified = name if name.startswith(("timm:", "torchvision:")) else f"timm:{name}"
        try:
            source, arch = resolve_architecture(qualified)
        except UnknownArchitectureError as error:
            raise UnknownArchitectureError(
                f"config.json names the architecture {name!r}, which this process cannot build: {error} "
                "Checkpoints can name only timm architectures and torchvision builders (never import paths); "
                "tract_hub's own CIFAR ResNets need tract_hub installed."
            ) from error
        model_args = config.get("model_args", {})
        if not isinstance(model_args, dict) or not all(isinstance(key, str) for key in model_args):
            raise CheckpointIntegrityError(
                f"config.json's model_args is {type(model_args).__name__} {model_args!r}; expected an object of "
                "constructor keyword arguments"
            )
        forbidden = sorted(FORBIDDEN_MODEL_ARGS & set(model_args))
        if forbidden:
            raise CheckpointIntegrityError(
                f"config.json's model_args sets {forbidden}, which would make the constructor load weights or "
                f"files; a checkpoint may set only architecture arguments. Remove {forbidden} from config.json"
            )
        return cls(source, arch, dict(model_args))


def builder_safety_kwargs(spec: ArchitectureSpec) -> dict[str, Any]:
    """Keyword arguments that keep a torchvision builder from downloading anything (``weights_backbone=None``)."""
    if spec.source != "torchvision":
        return {}
    import torchvision

    parameters = inspect.signature(torchvision.models.get_model_builder(spec.name)).parameters
    return {"weights_backbone": None} if "weights_backbone" in parameters else {}


def build(spec: ArchitectureSpec, *, pretrained_cfg: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialized model of ``spec`` (no weights are downloaded or read)."""
    kwargs = {**spec.model_args, **builder_safety_kwargs(spec)}
    if pretrained_cfg is not None:
        kwargs["pretrained_cfg"] = pretrained_cfg
    try:
        return create_model(spec.qualified_name, pretrained=False, **kwargs)
    except (TypeError, ValueError, RuntimeError, AssertionError, KeyError) as error:
        raise CheckpointIntegrityError(
            f"cannot build {spec.qualified_name} with model_args {spec.model_args}: {type(error).__name__}: {error}. "
            "The checkpoint's config.json does not describe a model this timm/torchvision version can build"
        ) from error


def expected_shapes(spec: ArchitectureSpec) -> dict[str, tuple[int, ...]] | None:
    """State-dict key -> shape of ``spec``, built on the meta device (no memory); None if it cannot be built so."""
    kwargs = {**spec.model_args, **builder_safety_kwargs(spec)}
    try:
        with torch.device("meta"):
            model = create_model(spec.qualified_name, pretrained=False, **kwargs)
    except Exception as error:
        logger.debug("cannot build %s on the meta device (%s)", spec.qualified_name, error)
        return None
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def shapes_of(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def describe_difference(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], limit: int = 5) -> str:
    """Human-readable missing / unexpected / mismatched keys between two key -> shape maps ('' if equal)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(key for key in set(expected) & set(found) if expected[key] != found[key])
    parts = []

    def listing(keys: list[str]) -> str:
        more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
        return ", ".join(keys[:limit]) + more

    if missing:
        parts.append(f"{len(missing)} missing key(s): {listing(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {listing(unexpected)}")
    if mismatched:
        shown = [f"{key} {found[key]} vs {expected[key]}" for key in mismatched]
        parts.append(f"{len(mismatched)} shape mismatch(es) (found vs expected): {listing(shown)}")
    return "; ".join(parts)


def describe_model(
    model: nn.Module, architecture: str | None = None, model_kwargs: dict[str, Any] | None = None
) -> ArchitectureSpec:
    """The architecture of ``model`` for saving: given by the caller, read from timm, or inferred for torchvision."""
    if model_kwargs is not None:
        if not isinstance(model_kwargs, dict):
            raise InvalidArgumentError(f"model_kwargs={model_kwargs!r} is not a dict of constructor arguments")
        model_kwargs = json_safe(model_kwargs, "model_kwargs")
        forbidden = sorted(FORBIDDEN_MODEL_ARGS & set(model_kwargs))
        if forbidden:
            raise InvalidArgumentError(
                f"model_kwargs sets {forbidden}; a checkpoint records only architecture arguments (the weights are "
                "saved in model.safetensors)"
            )
    if architecture is not None:
        source, name = resolve_architecture(architecture)
        if source == "timm" and not is_timm_model(model):
            raise InvalidArgumentError(
                f"architecture={architecture!r} is a timm architecture, but {type(model).__name__} was not built by "
                "timm (it has no pretrained_cfg); build it with timm.create_model or tract_hub.models.create_model"
            )
        if source == "torchvision" and model_kwargs is None:
            num_classes = head_num_classes(model) if find_torchvision_head(model) else None
            model_kwargs = {"num_classes": num_classes} if num_classes is not None else {}
        return ArchitectureSpec(source, name, dict(model_kwargs or {}))
    if is_timm_model(model):
        name = model.pretrained_cfg.get("architecture")
        if name in known_architectures("timm"):
            return ArchitectureSpec("timm", name, dict(model_kwargs or {}))
    if model_kwargs is not None:
        raise InvalidArgumentError(
            f"model_kwargs given without architecture=: name the architecture of this {type(model).__name__} "
            "('timm:<name>' or 'torchvision:<builder>')"
        )
    return _infer_torchvision(model)


def _published_size(name: str) -> tuple[int, int] | None:
    """(parameter count, classes) of a torchvision builder's first published weights, from their metadata."""
    import torchvision

    try:
        weights = next(iter(torchvision.models.get_model_weights(name)))
        return int(weights.meta["num_params"]), len(weights.meta["categories"])
    except (KeyError, StopIteration, TypeError, ValueError):
        return None


def _size_with_classes(model: nn.Module, classes: int) -> int | None:
    """The parameter count ``model`` would have with a ``classes``-way head (None if its head is unknown)."""
    head = find_torchvision_head(model)
    if head is None:
        return None
    layer = head[1]
    head_params = sum(p.numel() for p in layer.parameters())
    per_class = head_params // max(head_num_classes(model) or 1, 1)
    return sum(p.numel() for p in model.parameters()) - head_params + per_class * classes


def _infer_torchvision(model: nn.Module) -> ArchitectureSpec:
    """The torchvision builder whose model has exactly this state_dict's keys and shapes.

    Builders returning the model's class are the candidates; those whose published weights have the same
    parameter count (with the head resized) are built first, on the meta device, so that usually one is built.
    """
    import torchvision

    found = shapes_of(model.state_dict())
    num_classes = head_num_classes(model) if find_torchvision_head(model) else None
    kwargs = {"num_classes": num_classes} if num_classes is not None else {}
    candidates = [
        name
        for name in sorted(torchvision.models.list_models())
        if getattr(inspect.signature(torchvision.models.get_model_builder(name)).return_annotation, "__name__", None)
        == type(model).__name__
    ]

    def likely(name: str) -> bool:
        size = _published_size(name)
        return size is not None and _size_with_classes(model, size[1]) == size[0]

    ordered = [name for name in candidates if likely(name)]
    matches = [ArchitectureSpec("torchvision", n, kwargs) for n in ordered if _builds_shapes(n, kwargs, found)]
    if not matches:
        rest = [name for name in candidates if name not in ordered]
        matches = [ArchitectureSpec("torchvision", n, kwargs) for n in rest if _builds_shapes(n, kwargs, found)]
    if len(matches) == 1:
        logger.info("identified %s as %s %s", type(model).__name__, matches[0].qualified_name, matches[0].model_args)
        return matches[0]
    what = (
        "several builders match: " + ", ".join(m.qualified_name for m in matches) if matches else "no builder matches"
    )
    raise InvalidArgumentError(
        f"cannot tell which timm architecture or torchvision builder this {type(model).__name__} is ({what}); "
        "pass architecture='timm:<name>' or 'torchvision:<builder>' and model_kwargs={...} with its constructor "
        "arguments"
    )


def _builds_shapes(name: str, kwargs: dict[str, Any], found: dict[str, tuple[int, ...]]) -> bool:
    return expected_shapes(ArchitectureSpec("torchvision", name, kwargs)) == found

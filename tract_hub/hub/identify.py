"""Which architecture a model is, for saving: given by the caller, read from timm, or identified among
torchvision's builders (the one builder whose model has exactly this state dict's keys and shapes).

Example:
    >>> import torchvision
    >>> spec = describe_model(torchvision.models.squeezenet1_1(num_classes=4))
    >>> spec.qualified_name, spec.model_args
    ('torchvision:squeezenet1_1', {'num_classes': 4})
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from torch import nn

from ..artifacts.files import json_safe
from ..artifacts.weights import shapes_of
from ..errors import InvalidArgumentError
from ..models import known_architectures, resolve_architecture
from ..pretrained.heads import find_torchvision_head, head_num_classes, is_timm_model
from ..pretrained.spec import FORBIDDEN_MODEL_ARGS, ArchitectureSpec, expected_shapes

logger = logging.getLogger(__name__)


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

"""Which architecture a checkpoint holds, and building it again: timm models and torchvision builders only.

A checkpoint names its architecture as timm does (``"architecture": "<timm name>"``) or, for torchvision,
``"architecture": "torchvision:<builder>"``, with the constructor's keyword arguments under ``"model_args"``.
Names are checked against ``timm.list_models()`` / ``torchvision.models.list_models()`` (never imported as a
path), and arguments that would make the constructor fetch or unpickle anything are refused.

Example:
    >>> from tract_hub.artifacts.checkpoint.spec import ArchitectureSpec
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

from ...errors import CheckpointIntegrityError, UnknownArchitectureError
from ...models import create_model, resolve_architecture

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

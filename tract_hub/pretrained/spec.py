"""Which architecture a checkpoint holds, and building it again: timm models and torchvision builders only.

A checkpoint names its architecture as timm does (``"architecture": "<timm name>"``) or, for torchvision,
``"architecture": "torchvision:<builder>"``, with the constructor's keyword arguments under ``"model_args"``.
Names are checked against ``timm.list_models()`` / ``torchvision.models.list_models()`` (never imported as a
path), and arguments that would make the constructor fetch or unpickle anything are refused.

Example:
    >>> from tract_hub.pretrained.spec import ArchitectureSpec
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

from ..errors import CheckpointIntegrityError, UnknownArchitectureError
from ..models import create_model, resolve_architecture

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
        _check_num_classes(config, model_args)
        return cls(source, arch, dict(model_args))


def _count_or_none(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointIntegrityError(f"config.json's {where} is {value!r}; expected a number of classes (an integer)")
    return value


def _check_num_classes(config: dict[str, Any], model_args: dict[str, Any]) -> None:
    """The top-level ``num_classes`` (timm's ``pretrained_cfg``) and ``model_args.num_classes`` must agree."""
    top = _count_or_none(config.get("num_classes"), "num_classes")
    inner = _count_or_none(model_args.get("num_classes"), "model_args.num_classes")
    if top is not None and inner is not None and top != inner:
        raise CheckpointIntegrityError(
            f"config.json says num_classes={top} but model_args.num_classes={inner}; one checkpoint has one head. "
            "Make the two agree in config.json (the weights' head has the right number)"
        )


def _integers(value: Any, where: str) -> list[tuple[str, int]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [(where, value)]
    if isinstance(value, list | tuple):
        return [found for i, item in enumerate(value) for found in _integers(item, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _integers(item, f"{where}.{key}")]
    return []


def check_sizes(config: dict[str, Any], weights_bytes: int) -> None:
    """Refuse sizes no real checkpoint has: an integer of ``model_args`` (or ``num_classes``) larger than the
    weights file in bytes cannot describe the model in it (a head, a depth, a width each take more bytes), and
    building it first would take the memory or the time that the number says."""
    found = _integers(config.get("model_args") or {}, "model_args")
    found += _integers(config.get("num_classes"), "num_classes")
    for where, value in found:
        if abs(value) > max(weights_bytes, 2**16):
            raise CheckpointIntegrityError(
                f"config.json's {where}={value:,} is larger than the weights file ({weights_bytes:,} bytes), so it "
                "cannot describe the model in it; fix config.json (it was damaged or written by hand)"
            )


def _allowed_kinds(default: Any) -> tuple[type, ...] | None:
    """The JSON kinds a constructor argument with this default accepts (None: not checked)."""
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int | float):
        return (int, float, list, type(None))  # a size may also be given per dimension
    if isinstance(default, str):
        return (str, type(None))
    if isinstance(default, list | tuple):
        return (list, int, float, type(None))
    return None


def check_model_args(spec: ArchitectureSpec, model_class: type) -> None:
    """Refuse a ``model_args`` value of the wrong kind for the constructor (``drop_rate: "x"``), naming the key.

    The kind expected is that of the argument's default in ``model_class.__init__``; arguments without a default,
    with a default of ``None``, or absent from the signature are not checked.
    """
    try:
        parameters = inspect.signature(model_class.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover - a constructor without a signature
        return
    for key, value in spec.model_args.items():
        parameter = parameters.get(key)
        if parameter is None or parameter.default is inspect.Parameter.empty:
            continue
        allowed = _allowed_kinds(parameter.default)
        wrong_bool = isinstance(value, bool) and not isinstance(parameter.default, bool)
        if allowed is not None and (wrong_bool or not isinstance(value, allowed)):
            raise CheckpointIntegrityError(
                f"config.json's model_args.{key}={value!r} ({type(value).__name__}) does not fit "
                f"{model_class.__name__}'s argument {key} (default {parameter.default!r}); give a value of that kind"
            )


def builder_safety_kwargs(spec: ArchitectureSpec) -> dict[str, Any]:
    """Keyword arguments that keep a torchvision builder from downloading anything (``weights_backbone=None``)."""
    if spec.source != "torchvision":
        return {}
    import torchvision

    parameters = inspect.signature(torchvision.models.get_model_builder(spec.name)).parameters
    return {"weights_backbone": None} if "weights_backbone" in parameters else {}


def _kwargs(spec: ArchitectureSpec, pretrained_cfg: dict[str, Any] | None) -> dict[str, Any]:
    kwargs = {**spec.model_args, **builder_safety_kwargs(spec)}
    if pretrained_cfg is not None:
        kwargs["pretrained_cfg"] = pretrained_cfg
    return kwargs


#: What a constructor raises for arguments it cannot take (on any device); other errors of a build on the meta
#: device (RuntimeError, NotImplementedError: a constructor that computes with tensor values) are the device's.
_ARGUMENT_ERRORS = (TypeError, ValueError, KeyError, IndexError, AssertionError, AttributeError)


def _cannot_build(spec: ArchitectureSpec, error: BaseException) -> CheckpointIntegrityError:
    return CheckpointIntegrityError(
        f"cannot build {spec.qualified_name} with model_args {spec.model_args}: {type(error).__name__}: {error}. "
        "The checkpoint's config.json does not describe a model this timm/torchvision version can build"
    )


def build(spec: ArchitectureSpec, *, pretrained_cfg: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialized model of ``spec`` (no weights are downloaded or read); any failure of the
    constructor is the project's error (the arguments come from a file)."""
    try:
        return create_model(spec.qualified_name, pretrained=False, **_kwargs(spec, pretrained_cfg))
    except Exception as error:
        raise _cannot_build(spec, error) from error


def build_on_meta(
    spec: ArchitectureSpec, *, pretrained_cfg: dict[str, Any] | None = None, strict: bool = False
) -> nn.Module | None:
    """``spec`` built on the meta device (no memory is allocated), or None if it cannot be built so; with
    ``strict``, arguments the constructor refuses raise :class:`CheckpointIntegrityError` instead."""
    try:
        with torch.device("meta"):
            return create_model(spec.qualified_name, pretrained=False, **_kwargs(spec, pretrained_cfg))
    except _ARGUMENT_ERRORS as error:
        if strict:
            raise _cannot_build(spec, error) from error
        logger.debug("cannot build %s (%s)", spec.qualified_name, error)
        return None
    except Exception as error:
        logger.debug("cannot build %s on the meta device (%s)", spec.qualified_name, error)
        return None


def expected_shapes(spec: ArchitectureSpec) -> dict[str, tuple[int, ...]] | None:
    """State-dict key -> shape of ``spec``, built on the meta device (no memory); None if it cannot be built so."""
    model = build_on_meta(spec)
    return None if model is None else {key: tuple(value.shape) for key, value in model.state_dict().items()}

"""Build an architecture by name: a timm model or a torchvision builder, nothing else.

A name is ``timm:<architecture>``, ``torchvision:<builder>``, or a bare name looked up in timm first, then in
``torchvision.models.list_models()``. Only those registries are consulted: a name can never be an import path
or a callable, so configs that name architectures are safe to load.

Example:
    >>> from tract_hub.models import create_model, resolve_architecture
    >>> resolve_architecture("torchvision:resnet18")
    ('torchvision', 'resnet18')
    >>> type(create_model("timm:resnet18", num_classes=5)).__name__
    'ResNet'
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

from torch import nn

from ..errors import UnknownArchitectureError

SOURCES = ("timm", "torchvision")


@functools.cache
def _timm_names() -> frozenset[str]:
    import timm

    from . import families  # noqa: F401  (its import registers tract_hub's CIFAR architectures with timm)

    return frozenset(timm.list_models())


@functools.cache
def _torchvision_names() -> frozenset[str]:
    import torchvision

    return frozenset(torchvision.models.list_models())


def known_architectures(source: str) -> frozenset[str]:
    """Every architecture name ``source`` (``"timm"`` or ``"torchvision"``) can build."""
    if source == "timm":
        return _timm_names()
    if source == "torchvision":
        return _torchvision_names()
    raise UnknownArchitectureError(f"model source {source!r} is not one of {SOURCES}")


def _unknown(name: str, candidates: frozenset[str]) -> UnknownArchitectureError:
    close = difflib.get_close_matches(name.split(":")[-1], sorted(candidates), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return UnknownArchitectureError(
        f"{name!r} is neither a timm architecture (timm.list_models()) nor a torchvision builder "
        f"(torchvision.models.list_models()).{hint} Write timm:<name> or torchvision:<name>."
    )


def resolve_architecture(name: str) -> tuple[str, str]:
    """``(source, architecture)`` for a model name; raises :class:`UnknownArchitectureError` when unknown."""
    if not isinstance(name, str) or not name:
        raise UnknownArchitectureError(f"architecture name {name!r} is not a non-empty string")
    source, sep, arch = name.partition(":")
    if sep:
        if source not in SOURCES:
            raise UnknownArchitectureError(
                f"{name!r}: the prefix {source!r} is not one of {SOURCES}; write timm:<name> or torchvision:<name>"
            )
        if arch not in known_architectures(source):
            raise _unknown(name, known_architectures(source))
        return source, arch
    for source in SOURCES:
        if name in known_architectures(source):
            return source, name
    raise _unknown(name, _timm_names() | _torchvision_names())


def create_model(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``name`` (see :func:`resolve_architecture`) with keyword arguments for its constructor.

    ``pretrained=True`` downloads the architecture's own default weights (timm or torchvision); it needs the
    network the first time.
    """
    source, arch = resolve_architecture(name)
    if source == "timm":
        import timm

        return timm.create_model(arch, pretrained=pretrained, **kwargs)
    import torchvision

    if pretrained:
        kwargs.setdefault("weights", "DEFAULT")
    return torchvision.models.get_model(arch, **kwargs)

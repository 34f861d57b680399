"""TrAct's metadata block, stored under the one extra top-level key ``"tract_hub"`` of ``config.json``.

It records lambda (``null`` for a vanilla model), the first layer(s), whether exact mode was used, the recipe,
the final metrics, the library versions, the weights file's size and sha256, and the format version. Callers
add their own keys (dataset, best epoch, license, base model, ...) through ``metadata=``.

Example:
    >>> from tract_hub.hub.metadata import read_metadata
    >>> read_metadata({"architecture": "resnet18"})   # a plain timm checkpoint has no block
    {}
"""

from __future__ import annotations

import logging
import platform
from typing import Any

from torch import nn

from .._version import __version__
from ..errors import CheckpointIntegrityError, HubError, InvalidArgumentError, TrActError
from ..patching import patched_layers
from ..patching.api import check_lam
from .architecture import ArchitectureSpec
from .layout import FORMAT_VERSION, METADATA_KEY, WEIGHTS_NAME, json_safe

logger = logging.getLogger(__name__)

#: Keys of the block that tract_hub computes; ``metadata=`` may not set them.
COMPUTED_KEYS = frozenset(
    {"architecture", "format_version", "versions", "weights_bytes", "weights_file", "weights_sha256"}
)


def library_versions() -> dict[str, str]:
    """Versions of tract_hub, python and the libraries a checkpoint depends on."""
    import huggingface_hub
    import safetensors
    import timm
    import torch
    import torchvision

    return {
        "huggingface_hub": huggingface_hub.__version__,
        "python": platform.python_version(),
        "safetensors": safetensors.__version__,
        "timm": timm.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "tract_hub": __version__,
    }


def _located_first_layers(model: nn.Module) -> list[str]:
    try:
        from ..registry import locate
    except ImportError as error:
        logger.debug("tract_hub.registry is not available (%s); first layers not located", error)
        return []
    try:
        return [layer.name for layer in locate(model)]
    except TrActError as error:
        logger.warning("could not locate the first layer of %s for the checkpoint's metadata: %s", type(model), error)
        return []


def _tract_settings(model: nn.Module, given: dict[str, Any]) -> dict[str, Any]:
    """lam, exact and first_layers: from the patched layers if the model is patched, else from ``given``."""
    patched = patched_layers(model)
    if not patched:
        lam = given.get("lam")
        if lam is not None:
            lam = check_lam(lam)
        first_layers = given.get("first_layers")
        if first_layers is None:
            first_layers = _located_first_layers(model)
        if not isinstance(first_layers, list) or not all(isinstance(name, str) for name in first_layers):
            raise InvalidArgumentError(f"metadata['first_layers']={first_layers!r} is not a list of layer names")
        return {"lam": lam, "exact": bool(given.get("exact", False)), "first_layers": first_layers}
    lams = {layer.lam for layer in patched}
    settings = {
        "lam": lams.pop() if len(lams) == 1 else {layer.name: layer.lam for layer in patched},
        "exact": patched[0].exact,
        "first_layers": [layer.name for layer in patched],
    }
    for key, value in settings.items():
        if key in given and given[key] != value:
            raise InvalidArgumentError(
                f"metadata[{key!r}]={given[key]!r} contradicts the patched model ({key}={value!r}); leave it out "
                "(it is read from the patched layers) or patch the model accordingly"
            )
    return settings


def build_metadata(
    model: nn.Module, spec: ArchitectureSpec, weights: dict[str, Any], metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """The ``"tract_hub"`` block for ``model`` saved as ``spec`` with weights ``{"sha256", "bytes"}``."""
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgumentError(f"metadata={metadata!r} is not a dict")
    given = json_safe(metadata or {}, "metadata")
    reserved = sorted(COMPUTED_KEYS & set(given))
    if reserved:
        raise InvalidArgumentError(f"metadata sets {reserved}, which tract_hub computes itself; leave them out")
    block = {
        "metrics": None,
        "recipe": None,
        **given,
        **_tract_settings(model, given),
        "architecture": spec.qualified_name,
        "format_version": FORMAT_VERSION,
        "versions": library_versions(),
        "weights_bytes": weights["bytes"],
        "weights_file": WEIGHTS_NAME,
        "weights_sha256": weights["sha256"],
    }
    return dict(sorted(block.items()))


def recorded_lam(block: dict[str, Any]) -> float | None:
    """The lambda a block records: a number, the first of per-layer values, or None (vanilla / not recorded)."""
    lam = block.get("lam")
    if isinstance(lam, dict):
        lam = next(iter(lam.values()), None)
    return float(lam) if isinstance(lam, int | float) and not isinstance(lam, bool) else None


def read_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """The ``"tract_hub"`` block of a config (``{}`` if absent); refuses malformed or newer blocks."""
    block = config.get(METADATA_KEY)
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise CheckpointIntegrityError(f"config.json's {METADATA_KEY!r} entry is {type(block).__name__}, not an object")
    version = block.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointIntegrityError(f"config.json's {METADATA_KEY}.format_version is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise HubError(
            f"the checkpoint's {METADATA_KEY} format version is {version}; this tract_hub {__version__} reads up to "
            f"{FORMAT_VERSION}. Upgrade tract_hub (pip install -U tract-hub)"
        )
    sha = block.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise CheckpointIntegrityError(
            f"config.json's {METADATA_KEY}.weights_sha256 is {sha!r}, not a sha256 hex digest"
        )
    return block

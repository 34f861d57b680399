"""The weights file: safetensors only, written from a state_dict, verified by size and sha256, loaded strictly.

A state dict that does not fit a model is described key by key (:func:`describe_difference`): missing,
unexpected and mismatched keys with their shapes.

Example:
    >>> import pathlib, tempfile, torch
    >>> from tract_hub.artifacts.checkpoint.weights import load_strict, read_weights, write_weights
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
    >>> model = torch.nn.Linear(2, 2)
    >>> write_weights(model, path)["bytes"] > 0
    True
    >>> load_strict(torch.nn.Linear(2, 2), read_weights(path), "Linear")
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ...errors import CheckpointIntegrityError, HubError
from ..files import fsync_file, sha256_file

logger = logging.getLogger(__name__)


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


def _plain_tensors(state_dict: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors; tensors sharing memory are copied (safetensors refuses shared storage)."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise HubError(f"state_dict entry {key!r} is a {type(value).__name__}, not a tensor; it cannot be saved")
        tensor = value.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage()
        location = (storage.data_ptr(), storage.nbytes())
        if tensor.numel() and (location in seen or storage.nbytes() != tensor.numel() * tensor.element_size()):
            tensor = tensor.clone()
        seen.add((tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes()))
        tensors[key] = tensor
    return tensors


def save_state_dict(state_dict: dict[str, Any], path: Path) -> None:
    """Save a state_dict as safetensors at ``path``, flushed to disk."""
    save_file(_plain_tensors(state_dict), str(path), metadata={"format": "pt"})
    fsync_file(path)


def write_weights(model: nn.Module, path: Path) -> dict[str, Any]:
    """Save ``model.state_dict()`` as safetensors at ``path``; returns ``{"sha256", "bytes"}`` of the file."""
    save_state_dict(model.state_dict(), path)
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def verify_weights(path: Path, sha256: str | None, size: int | None) -> None:
    """Raise :class:`CheckpointIntegrityError` if the file's size or sha256 differs from what was recorded."""
    if not path.is_file():
        raise CheckpointIntegrityError(f"weights file {str(path)!r} is missing; the checkpoint is incomplete")
    actual_size = path.stat().st_size
    if isinstance(size, int) and actual_size != size:
        state = "truncated" if actual_size < size else "longer than recorded"
        raise CheckpointIntegrityError(
            f"weights file {str(path)!r} is {state}: {actual_size} bytes, config.json records {size}. "
            "Download or copy the checkpoint again (for the Hub: force_download, or delete it from the cache)"
        )
    if sha256 is None:
        logger.warning("%s: config.json records no sha256 (not a tract_hub checkpoint); integrity not checked", path)
        return
    actual = sha256_file(path)
    if actual != sha256:
        raise CheckpointIntegrityError(
            f"weights file {str(path)!r} is corrupted or was replaced: its sha256 is {actual}, config.json records "
            f"{sha256}. Download or copy the checkpoint again"
        )


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never unpickles); a damaged file raises CheckpointIntegrityError."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointIntegrityError(
            f"weights file {str(path)!r} cannot be read as safetensors: it is not a readable safetensors file "
            f"({error}); it is truncated or corrupted. Download or copy the checkpoint again"
        ) from error


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Load ``state_dict`` into ``model`` with every key and shape matching, or raise naming the differences."""
    difference = describe_difference(shapes_of(model.state_dict()), shapes_of(state_dict))
    if difference:
        raise CheckpointIntegrityError(
            f"the weights do not fit {what}: {difference}. The weights file belongs to another architecture or "
            "other model_args than config.json says; fix config.json or use the matching weights"
        )
    model.load_state_dict(state_dict, strict=True)

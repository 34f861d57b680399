"""The weights file of run and Hub checkpoints: safetensors only, written from a state_dict, verified by size and
sha256, loaded strictly.

Before any tensor is read, the file's header (each key's dtype and shape, :func:`read_header`) is compared
with what the model expects (:func:`check_tensors`), so weights that do not fit are refused without allocating
them or the model. A state dict that does not fit is described key by key (:func:`describe_difference`):
missing and unexpected keys, mismatched shapes and dtypes; a dtype is never converted silently (an int8, bool
or float16 tensor does not load into a float32 parameter, nor a float into ``num_batches_tracked``).

Example:
    >>> import pathlib, tempfile, torch
    >>> from tract_hub.artifacts.weights import load_strict, read_weights, write_weights
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
    >>> model = torch.nn.Linear(2, 2)
    >>> write_weights(model, path)["bytes"] > 0
    True
    >>> read_header(path)["weight"]
    ('float32', (2, 2))
    >>> load_strict(torch.nn.Linear(2, 2), read_weights(path), "Linear")
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import CheckpointIntegrityError, HubError
from .files import fsync_file, sha256_file

logger = logging.getLogger(__name__)


#: A tensor as a header describes it: its dtype (torch's name, e.g. "float32") and its shape.
TensorSpec = tuple[str, tuple[int, ...]]

#: safetensors' dtype names -> torch's.
_SAFETENSORS_DTYPES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "U32": "uint32",
    "I32": "int32",
    "U64": "uint64",
    "I64": "int64",
    "F16": "float16",
    "BF16": "bfloat16",
    "F32": "float32",
    "F64": "float64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def shapes_of(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def specs_of(state_dict: dict[str, torch.Tensor]) -> dict[str, TensorSpec]:
    """Key -> (dtype, shape) of a state dict (of real or meta tensors)."""
    return {key: (dtype_name(value.dtype), tuple(value.shape)) for key, value in state_dict.items()}


def _listing(keys: list[str], limit: int) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def describe_difference(expected: dict[str, Any], found: dict[str, Any], limit: int = 5) -> str:
    """Human-readable missing / unexpected / mismatched keys between two key -> shape (or -> :data:`TensorSpec`)
    maps ('' if equal); shapes and dtypes are reported apart."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    both = sorted(set(expected) & set(found))
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_listing(missing, limit)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected, limit)}")

    def split(value: Any) -> tuple[str | None, tuple[int, ...]]:
        spec = isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
        return (value[0], tuple(value[1])) if spec else (None, value)

    shapes = [f"{key} {split(found[key])[1]} vs {split(expected[key])[1]}" for key in both
              if split(found[key])[1] != split(expected[key])[1]]  # fmt: skip
    dtypes = [f"{key} {split(found[key])[0]} vs {split(expected[key])[0]}" for key in both
              if split(found[key])[0] != split(expected[key])[0]]  # fmt: skip
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es) (found vs expected): {_listing(shapes, limit)}")
    if dtypes:
        parts.append(f"{len(dtypes)} dtype mismatch(es) (found vs expected): {_listing(dtypes, limit)}")
    return "; ".join(parts)


def read_header(path: Path) -> dict[str, TensorSpec]:
    """Key -> (dtype, shape) from a safetensors file's header, reading no tensor data."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            specs, keys = {}, handle.keys()  # a safe_open handle is not iterable itself
            for key in keys:
                piece = handle.get_slice(key)
                raw = piece.get_dtype()
                specs[key] = (_SAFETENSORS_DTYPES.get(raw, raw), tuple(int(n) for n in piece.get_shape()))
            return specs
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _unreadable(path, error) from error


def check_tensors(expected: dict[str, TensorSpec], found: dict[str, TensorSpec], what: str) -> None:
    """Refuse weights whose keys, shapes or dtypes differ from what ``what`` expects, naming each key."""
    difference = describe_difference(expected, found)
    if difference:
        raise CheckpointIntegrityError(
            f"the weights do not fit {what}: {difference}. The weights file belongs to another architecture or "
            "other model_args than config.json says, or was converted to another dtype; fix config.json or use "
            "the matching weights (tract_hub converts no dtype silently)"
        )


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
    if actual != sha256.lower():  # hex digits are the same in either case
        raise CheckpointIntegrityError(
            f"weights file {str(path)!r} is corrupted or was replaced: its sha256 is {actual}, config.json records "
            f"{sha256}. Download or copy the checkpoint again"
        )


def _unreadable(path: Path, error: Exception) -> CheckpointIntegrityError:
    return CheckpointIntegrityError(
        f"weights file {str(path)!r} cannot be read as safetensors: it is not a readable safetensors file "
        f"({error}); it is truncated or corrupted. Download or copy the checkpoint again"
    )


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never unpickles); a damaged file raises CheckpointIntegrityError."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _unreadable(path, error) from error


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Load ``state_dict`` into ``model`` with every key, shape and dtype matching, or raise naming the keys."""
    check_tensors(specs_of(model.state_dict()), specs_of(state_dict), what)
    model.load_state_dict(state_dict, strict=True)

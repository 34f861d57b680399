"""The files of a checkpoint directory, its format version, and small helpers to write and hash them.

Example:
    >>> import pathlib, tempfile
    >>> from tract_hub.hub.layout import sha256_file
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> _ = path.write_bytes(b"abc")
    >>> sha256_file(path)[:16]
    'ba7816bf8f01cfea'
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

#: Version of the ``"tract_hub"`` block in ``config.json``; readers refuse newer versions.
FORMAT_VERSION = 1

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
CURVES_NAME = "training_curves.png"

#: Top-level key of ``config.json`` under which TrAct's metadata lives (every other key is timm's).
METADATA_KEY = "tract_hub"

#: Weight files that a checkpoint may carry but that tract_hub never reads (they unpickle).
PICKLE_WEIGHT_NAMES = ("pytorch_model.bin", "pytorch_model.pth", "model.pth", "model.pt", "model.bin")

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a written file to disk, so that a rename after it publishes complete contents."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def write_json(path: Path, data: dict[str, Any], *, sort_keys: bool = True) -> None:
    """Write ``data`` as indented JSON (keys sorted unless told otherwise) with a trailing newline."""
    path.write_text(json.dumps(data, indent=2, sort_keys=sort_keys) + "\n", encoding="utf-8")


def json_safe(value: Any, what: str) -> Any:
    """``value`` after a JSON round trip; :class:`InvalidArgumentError` naming ``what`` if it is not JSON data."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"{what} is not JSON data ({error}); give plain dicts, lists, strings, finite numbers, booleans or None"
        ) from error

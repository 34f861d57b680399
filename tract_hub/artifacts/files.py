"""Writing files so that an interruption never leaves one that looks complete; JSON and sha256 helpers.

:func:`atomic_directory` (from :mod:`.rotation`, where its invariants are stated) fills a hidden staging
sibling and renames it into place, so a crash at any moment, or several in a row, leaves the newest complete
directory; :func:`write_text_atomic` does the same for one file. Every writer of tract_hub (run directories,
training checkpoints, Hub checkpoints) goes through these two.

Example:
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "checkpoint"
    >>> with atomic_directory(target) as staging:
    ...     _ = (staging / "config.json").write_text("{}")
    >>> sorted(path.name for path in target.iterdir())
    ['config.json']
    >>> sha256_file(target / "config.json")[:16]
    '44136fa355b3678a'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from .rotation import atomic_directory, check_target, disk_full_error, is_disk_full, previous_copy

__all__ = [
    "atomic_directory",
    "check_target",
    "fsync_file",
    "json_safe",
    "json_text",
    "previous_copy",
    "sha256_file",
    "write_text_atomic",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a fresh hidden sibling, flush it to disk, and rename it over ``path``.

    The sibling is created exclusively (a link planted at its name is never written through) and removed when
    the write fails; a write that runs out of space raises :class:`~tract_hub.errors.DiskFullError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = _exclusive_sibling(path)
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
    except BaseException as error:
        staging.unlink(missing_ok=True)
        if isinstance(error, OSError) and is_disk_full(error):
            raise disk_full_error(error, path, len(text.encode("utf-8"))) from error
        raise


def _exclusive_sibling(path: Path) -> tuple[int, Path]:
    """A new hidden file next to ``path``, opened for writing (created here, with the umask's permissions)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    while True:
        staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(staging, flags, 0o666), staging
        except FileExistsError:  # pragma: no cover - 32 random bits already taken
            continue


def json_text(data: Any) -> str:
    """``data`` as indented JSON with sorted keys and a trailing newline (every JSON file tract_hub writes)."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def json_safe(value: Any, what: str) -> Any:
    """``value`` after a JSON round trip; :class:`InvalidArgumentError` naming ``what`` if it is not JSON data."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidArgumentError(
            f"{what} is not JSON data ({error}); give plain dicts, lists, strings, finite numbers, booleans or None"
        ) from error


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

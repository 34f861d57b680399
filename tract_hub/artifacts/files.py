"""Writing files so that an interruption never leaves one that looks complete; JSON and sha256 helpers.

:func:`atomic_directory` fills a hidden staging sibling and renames it into place; the directory it replaces is
kept as ``.<name>.old`` (:func:`previous_copy`) until the new one is in place, so a crash at any moment leaves
either the old or the new directory complete. :func:`write_text_atomic` does the same for one file. Every writer
of tract_hub (run directories, training checkpoints, Hub checkpoints) goes through these two.

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
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import HubError, InvalidArgumentError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty directory unless ``overwrite``."""
    if target.exists() and not target.is_dir():
        raise HubError(f"{str(target)!r} exists and is not a directory; choose a directory path for the checkpoint")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise HubError(
            f"{str(target)!r} already exists and is not empty; pass overwrite=True (--overwrite) to replace its "
            "checkpoint files, or choose another directory"
        )


def previous_copy(target: Path) -> Path:
    """Where :func:`atomic_directory` keeps the directory it replaces until the new one is in place."""
    return target.with_name(f".{target.name}.old")


@contextmanager
def atomic_directory(target: str | os.PathLike[str], *, overwrite: bool = False, keep: bool = True) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces ``target`` in one rename.

    With ``overwrite=True`` an existing ``target`` is replaced; when ``keep`` is true, files of the old directory
    that the new one does not have are carried over (nothing of the user's is lost). On any exception the
    staging directory is removed and ``target`` is left as it was.
    """
    target = Path(target).absolute()
    check_target(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".incomplete", dir=target.parent))
    try:
        yield staging
        if keep and target.is_dir():
            _carry_over(target, staging)
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _carry_over(old: Path, new: Path) -> None:
    for path in old.iterdir():
        destination = new / path.name
        if destination.exists() or destination.is_symlink():
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, destination, symlinks=True)
        else:
            shutil.copy2(path, destination, follow_symlinks=False)
        logger.debug("kept %s from the replaced directory", path.name)


def _replace(staging: Path, target: Path) -> None:
    previous = previous_copy(target)
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.rename(target, previous)
    try:
        os.rename(staging, target)
    except BaseException:
        if previous.exists() and not target.exists():
            os.rename(previous, target)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a hidden sibling, flush it to disk, and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)


def json_text(data: Any) -> str:
    """``data`` as indented JSON with sorted keys and a trailing newline (every JSON file tract_hub writes)."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def json_safe(value: Any, what: str) -> Any:
    """``value`` after a JSON round trip; :class:`InvalidArgumentError` naming ``what`` if it is not JSON data."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
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

"""Write a directory atomically: fill a hidden temporary sibling, then rename it into place.

An interrupted write (exception, Ctrl-C, crash) never leaves a directory under the target name that looks
complete: the target either does not exist, keeps its old contents, or has all the new files. A hard crash can
leave a hidden ``.<name>.*.incomplete`` sibling behind; it is never mistaken for a checkpoint.

Example:
    >>> import pathlib, tempfile
    >>> from tract_hub.hub.atomic import atomic_directory
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "checkpoint"
    >>> with atomic_directory(target) as staging:
    ...     _ = (staging / "config.json").write_text("{}")
    >>> sorted(path.name for path in target.iterdir())
    ['config.json']
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import HubError

logger = logging.getLogger(__name__)


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty directory unless ``overwrite``."""
    if target.exists() and not target.is_dir():
        raise HubError(f"{str(target)!r} exists and is not a directory; choose a directory path for the checkpoint")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise HubError(
            f"{str(target)!r} already exists and is not empty; pass overwrite=True (--overwrite) to replace its "
            "checkpoint files, or choose another directory"
        )


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
    if not target.exists():
        os.rename(staging, target)
        return
    backup = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:8]}")
    os.rename(target, backup)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)

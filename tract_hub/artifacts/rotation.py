"""Replacing a directory so that no crash, nor several in a row, loses its newest complete version.

For a target ``P/name`` the scheme uses four names in ``P``::

    name                            the current version
    .name.new                       a complete newer version, published, not yet renamed into place
    .name.old                       the version being replaced
    .name.tmp-XXXXXXXX.incomplete   a staging directory being filled (never read)

A save (:func:`atomic_directory`) takes these steps, each one rename or one removal:

0. recover (below): finish or undo what an interrupted save left;
1. fill a fresh staging directory, then flush its files and itself to disk;
2. rename the staging directory to ``.name.new`` (the new version is published);
3. rename ``name`` to ``.name.old`` (when there is one);
4. rename ``.name.new`` to ``name``, and flush ``P``;
5. remove ``.name.old``.

Recovery (:func:`recover_directory`) removes staging directories, then: when ``.name.new`` exists, removes
``.name.old``, renames ``name`` to ``.name.old`` and ``.name.new`` to ``name``; when only ``.name.old`` exists,
renames it to ``name``; finally removes ``.name.old``. It takes the same kind of steps, so it may itself be
interrupted and run again.

Invariants, true at every instant (between any two steps of saves and recoveries, however many were killed):

* I1: ``.name.new``, when present, is complete and the newest version;
* I2: ``name``, when present, is complete and newer than ``.name.old``;
* I3: ``.name.old`` is complete whenever neither ``name`` nor ``.name.new`` exists (it is removed, a non-atomic
  step, only while one of them exists).

So the newest complete version is the first of ``.name.new``, ``name``, ``.name.old`` that exists
(:func:`newest_complete`), and a crash loses at most the save that was in progress. One process writes a
given target at a time (the trainer's rank 0; one ``save_pretrained`` per directory).

The rotation makes only real directories under its four names. Anything else there (a symlink, wherever it
points; a file; a device) was put there by someone else: a save refuses it with
:class:`~tract_hub.errors.HubError` before any step (:func:`check_own_names`), and nothing follows, renames or
deletes through it; readers (:func:`newest_complete`) pass over it.

Example:
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "last"
    >>> for epoch in (1, 2):
    ...     with atomic_directory(target, overwrite=True) as staging:
    ...         _ = (staging / "epoch.txt").write_text(str(epoch))
    >>> newest_complete(target).name, (target / "epoch.txt").read_text()
    ('last', '2')
    >>> sorted(path.name for path in target.parent.iterdir())  # no staging, no .new, no .old left
    ['last']
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DiskFullError, HubError

logger = logging.getLogger(__name__)

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: How the libraries that write checkpoints report a failed write without an errno (safetensors, torch.save).
_SPACE_MESSAGES = ("no space left", "file too large", "quota exceeded", "file write failed", "unexpected pos")


def new_copy(target: Path) -> Path:
    """``.name.new``: a complete version waiting to be renamed to ``name``."""
    return target.with_name(f".{target.name}.new")


def previous_copy(target: Path) -> Path:
    """``.name.old``: the version being replaced."""
    return target.with_name(f".{target.name}.old")


def _staging_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(target.name)}\.tmp-[a-z0-9_]{{8}}\.incomplete$")


def _staging_names(target: Path) -> list[Path]:
    """Every entry of ``target``'s folder named as a staging directory, whatever it is."""
    if not target.parent.is_dir():
        return []
    pattern = _staging_pattern(target)
    return sorted(path for path in target.parent.iterdir() if pattern.match(path.name))


def staging_directories(target: Path) -> list[Path]:
    """The staging directories of saves of ``target`` that were interrupted (or are in progress)."""
    return [path for path in _staging_names(target) if path.is_dir() and not path.is_symlink()]


def _foreign(path: Path) -> str | None:
    """What ``path`` is when it is not one of the rotation's own directories (None: absent, or a directory)."""
    if path.is_symlink():
        try:
            return f"a symlink to {os.readlink(path)!r}"
        except OSError:  # pragma: no cover - removed meanwhile
            return "a symlink"
    if path.exists() and not path.is_dir():
        return "a file" if path.is_file() else "not a directory"
    return None


def check_own_names(target: str | os.PathLike[str]) -> None:
    """Refuse anything under the rotation's names of ``target`` (``name``, ``.name.new``, ``.name.old`` and the
    staging names) that the rotation did not make: a symlink, a file or a device. Nothing is followed or removed;
    the error names the entry and the fix."""
    target = Path(target).absolute()
    for path in (target, new_copy(target), previous_copy(target), *_staging_names(target)):
        found = _foreign(path)
        if found is not None:
            role = "the checkpoint itself" if path == target else "a name the checkpoint rotation keeps for itself"
            raise HubError(
                f"{str(path)!r} is {found}, not a directory, at {role}; tract_hub writes only directories there "
                "and neither follows nor deletes anything else. Move it away (it was not made by tract_hub), then "
                "save again"
            )


def newest_complete(target: str | os.PathLike[str]) -> Path | None:
    """The newest complete version of ``target`` (see the module docstring), without changing anything."""
    target = Path(target).absolute()
    for candidate in (new_copy(target), target, previous_copy(target)):
        if candidate.is_dir() and not candidate.is_symlink():
            return candidate
    return None


def _fsync_directory(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform that cannot open directories
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover - a file system without directory fsync
        pass
    finally:
        os.close(descriptor)


def _flush_tree(directory: Path) -> None:
    """Flush every file of ``directory`` (and the directories) to disk, so a rename publishes complete data."""
    for folder, _, files in os.walk(directory):
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                descriptor = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        _fsync_directory(Path(folder))


def _remove(path: Path) -> None:
    """Remove one of the rotation's own directories (:func:`check_own_names` has refused anything else)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)


def recover_directory(target: str | os.PathLike[str]) -> None:
    """Finish or undo an interrupted save of ``target`` (see the module docstring); a no-op when there was none.
    Refuses (:func:`check_own_names`) what the rotation did not make under its names, before any step."""
    target = Path(target).absolute()
    check_own_names(target)
    for staging in staging_directories(target):
        logger.info("removing %s, left by an interrupted save of %s", staging.name, target)
        shutil.rmtree(staging, ignore_errors=True)
    new, old = new_copy(target), previous_copy(target)
    if new.is_dir():
        logger.warning("finishing the interrupted save of %s (its new version %s was complete)", target, new.name)
        _remove(old)
        if target.exists():
            os.rename(target, old)
        os.rename(new, target)
        _fsync_directory(target.parent)
    elif old.is_dir() and not target.exists():
        logger.warning("restoring %s from %s (a save was interrupted before the new version was complete)",
                       target, old.name)  # fmt: skip
        os.rename(old, target)
        _fsync_directory(target.parent)
    _remove(old)


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a target that is a file or a symlink, or a non-empty directory unless ``overwrite``."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise HubError(f"{str(target)!r} exists and is not a directory; choose a directory path for the checkpoint")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise HubError(
            f"{str(target)!r} already exists and is not empty; pass overwrite=True (--overwrite) to replace its "
            "checkpoint files, or choose another directory"
        )


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says that a write failed for lack of space (errno, or the writing library's message)."""
    if isinstance(error, OSError) and error.errno in _SPACE_ERRNOS:
        return True
    text = str(error).lower()
    return any(marker in text for marker in _SPACE_MESSAGES)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def disk_full_error(error: BaseException, target: Path, needed: int | None) -> DiskFullError:
    """The project's error for a write of ``target`` that ran out of space."""
    try:
        free = _megabytes(shutil.disk_usage(target.parent).free)
    except OSError:  # pragma: no cover - the folder vanished
        free = "unknown"
    need = f"about {_megabytes(needed)}" if needed else "more than is free"
    kept = f"{str(target)!r} is left as it was" if target.exists() else "nothing was written"
    return DiskFullError(
        f"cannot write {str(target)!r}: out of space ({type(error).__name__}: {error}). Writing it needs {need}; "
        f"{free} is free in {str(target.parent)!r} (a quota or a file-size limit can allow less). Free some space "
        f"or write elsewhere; {kept}"
    )


@contextmanager
def atomic_directory(
    target: str | os.PathLike[str], *, overwrite: bool = False, keep: bool = True, needed_bytes: int | None = None
) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces ``target`` (see the module docstring).

    With ``overwrite=True`` an existing ``target`` is replaced; when ``keep`` is true, files of the old directory
    that the new one does not have are carried over (nothing of the user's is lost). On any exception the
    staging directory is removed and ``target`` is left as it was; a write that runs out of space raises
    :class:`~tract_hub.errors.DiskFullError` naming ``target`` and ``needed_bytes``.
    """
    target = Path(target).absolute()
    recover_directory(target)
    check_target(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", suffix=".incomplete", dir=target.parent))
    try:
        try:
            yield staging
            if keep and target.is_dir():
                _carry_over(target, staging)
            _flush_tree(staging)
        except Exception as error:
            if is_disk_full(error):
                raise disk_full_error(error, target, needed_bytes) from error
            raise
        os.rename(staging, new_copy(target))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(target)


def _publish(target: Path) -> None:
    """Steps 3 to 5: ``.name.new`` becomes ``name``."""
    old = previous_copy(target)
    if target.exists():
        os.rename(target, old)
    os.rename(new_copy(target), target)
    _fsync_directory(target.parent)
    _remove(old)


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

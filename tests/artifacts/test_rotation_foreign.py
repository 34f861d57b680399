"""Checkpoint rotation: anything under the rotation's own names that it did not make is refused, never followed,
renamed or deleted (DESIGN decision 15).

The rotation of ``checkpoints/last`` uses ``last``, ``.last.new``, ``.last.old`` and ``.last.tmp-XXXXXXXX.incomplete``.
For each name and each foreign kind of entry (a symlink to a directory holding a checkpoint, to a file, a dangling
symlink, a plain file), a save must raise the project's error naming the entry, and afterwards the real ``last``,
the planted entry and whatever it points to are exactly as they were.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tract_hub.artifacts import rotation
from tract_hub.errors import HubError

NAMES = {
    "last": lambda target: target,
    ".last.new": rotation.new_copy,
    ".last.old": rotation.previous_copy,
    "staging": lambda target: target.with_name(f".{target.name}.tmp-abcd1234.incomplete"),
}


def save(target: Path, epoch: int) -> None:
    with rotation.atomic_directory(target, overwrite=True) as staging:
        (staging / "epoch.txt").write_text(str(epoch))


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (not following symlinks): files by content, symlinks by what they point to."""
    found = {}
    for folder, directories, files in os.walk(root):
        for name in directories + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file():
                found[key] = path.read_text()
            else:
                found[key] = "dir"
    return found


def plant_symlink_to_checkpoint(path: Path, elsewhere: Path) -> None:
    save(elsewhere / "victim", 99)
    os.symlink(elsewhere / "victim", path, target_is_directory=True)


def plant_symlink_to_file(path: Path, elsewhere: Path) -> None:
    (elsewhere / "secret.txt").write_text("keep me")
    os.symlink(elsewhere / "secret.txt", path)


def plant_dangling_symlink(path: Path, elsewhere: Path) -> None:
    os.symlink(elsewhere / "nothing-here", path)


def plant_file(path: Path, elsewhere: Path) -> None:
    path.write_text("someone's notes")


KINDS: dict[str, Callable[[Path, Path], None]] = {
    "symlink to a checkpoint": plant_symlink_to_checkpoint,
    "symlink to a file": plant_symlink_to_file,
    "dangling symlink": plant_dangling_symlink,
    "file": plant_file,
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", list(NAMES))
def test_a_foreign_entry_under_a_rotation_name_is_refused_and_left_alone(name: str, kind: str, tmp_path: Path) -> None:
    target, elsewhere = tmp_path / "run" / "checkpoints" / "last", tmp_path / "elsewhere"
    elsewhere.mkdir()
    if name != "last":
        save(target, 1)
    else:
        target.parent.mkdir(parents=True)
    planted = NAMES[name](target)
    KINDS[kind](planted, elsewhere)
    before = snapshot(tmp_path)

    message = rf"{planted.name}' is .*, not a directory, at .*; tract_hub writes only directories there"
    with pytest.raises(HubError, match=message):
        save(target, 2)

    assert snapshot(tmp_path) == before  # nothing renamed, followed or deleted, no staging left behind
    expected = None if name == "last" else target
    assert rotation.newest_complete(target) == expected  # readers never take the planted entry


def test_the_reported_attack_resume_keeps_the_real_last(tmp_path: Path) -> None:
    """The issue's case: a symlink planted as ``checkpoints/.last.new`` used to be renamed into place and the real
    ``last`` deleted, so --resume started from scratch."""
    target = tmp_path / "checkpoints" / "last"
    save(target, 5)
    plant_symlink_to_checkpoint(rotation.new_copy(target), tmp_path)
    with pytest.raises(HubError, match=r"\.last\.new' is a symlink to"):
        save(target, 6)
    assert rotation.newest_complete(target) == target and (target / "epoch.txt").read_text() == "5"
    assert (tmp_path / "victim" / "epoch.txt").read_text() == "99"
    os.unlink(rotation.new_copy(target))  # what the error says to do
    save(target, 6)
    assert (target / "epoch.txt").read_text() == "6" and sorted(os.listdir(target.parent)) == ["last"]

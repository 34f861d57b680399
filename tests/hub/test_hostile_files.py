"""Nothing outside a checkpoint folder is read into it or copied with it: links, devices, pipes and traversal.

Each hostile folder is built in tmp_path; ``outside`` stands for any file beyond the checkpoint folder (a
secret, /etc/passwd). Every file the hub reads or copies goes through one function
(:func:`tract_hub.artifacts.reading.confined_file`), so each case is tried on the three readers: ``pull``,
``push_to_hub`` of a checkpoint folder, and ``from_pretrained``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hub_helpers import COMMIT, build_hf_cache, write_run

import tract_hub
from tract_hub.artifacts.reading import confined_file
from tract_hub.errors import CheckpointIntegrityError, DataError, HubError, TrActError
from tract_hub.hub import pull, save_run

SECRET = b"SECRET-outside-the-checkpoint\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside every checkpoint folder of the test."""
    path = tmp_path / "elsewhere" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def _link(name: str, target: Callable[[Path, Path], str]) -> Callable[[Path, Path], None]:
    def damage(folder: Path, secret: Path) -> None:
        (folder / name).unlink(missing_ok=True)
        os.symlink(target(folder, secret), folder / name)

    return damage


def _fifo(name: str) -> Callable[[Path, Path], None]:
    def damage(folder: Path, secret: Path) -> None:
        (folder / name).unlink(missing_ok=True)
        os.mkfifo(folder / name)  # reading it would block forever

    return damage


def _directory(name: str) -> Callable[[Path, Path], None]:
    def damage(folder: Path, secret: Path) -> None:
        (folder / name).unlink()
        (folder / name).mkdir()

    return damage


def _weights_copied_outside(folder: Path, secret: Path) -> None:
    """Valid weights, but held outside the folder behind a link (the copy would read beyond the folder)."""
    moved = secret.with_name("model.safetensors")
    shutil.move(folder / "model.safetensors", moved)
    os.symlink(moved, folder / "model.safetensors")


# (case, damage, the fragment of the refusal)
CASES = [
    ("card links outside", _link("README.md", lambda f, s: str(s)), "outside its folder"),
    ("curves link outside", _link("training_curves.png", lambda f, s: str(s)), "outside its folder"),
    ("card links by ..", _link("README.md", lambda f, s: os.path.relpath(s, f)), "outside its folder"),
    ("config links outside", _link("config.json", lambda f, s: str(s)), "outside its folder"),
    ("weights link outside", _weights_copied_outside, "outside its folder"),
    ("weights are /dev/zero", _link("model.safetensors", lambda f, s: "/dev/zero"), "a character device"),
    ("card is a pipe", _fifo("README.md"), "a named pipe"),
    ("weights are a directory", _directory("model.safetensors"), "a directory"),
    ("dangling card link", _link("README.md", lambda f, s: str(s) + ".gone"), "does not exist"),
]
IDS = [case[0] for case in CASES]


def _assert_nothing_leaked(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "secret.txt":
            assert SECRET not in path.read_bytes(), f"{path} holds the content of a file outside the checkpoint"


@pytest.mark.parametrize(("case", "damage", "fragment"), CASES, ids=IDS)
def test_pull_refuses(case: str, damage: Callable, fragment: str, checkpoint_copy: Path, outside: Path) -> None:
    damage(checkpoint_copy, outside)
    target = checkpoint_copy.parent / "pulled"
    with pytest.raises(CheckpointIntegrityError, match=fragment) as raised:
        pull(checkpoint_copy, target)
    assert str(checkpoint_copy) in str(raised.value)  # the message names the file
    assert not target.exists() and not list(target.parent.glob(".pulled*"))
    assert outside.read_bytes() == SECRET
    _assert_nothing_leaked(checkpoint_copy.parent)


@pytest.mark.parametrize(("case", "damage", "fragment"), CASES, ids=IDS)
def test_push_of_a_checkpoint_folder_refuses(
    case: str, damage: Callable, fragment: str, checkpoint_copy: Path, outside: Path
) -> None:
    damage(checkpoint_copy, outside)
    folder = checkpoint_copy.parent / "upload"
    with pytest.raises(CheckpointIntegrityError, match=fragment):
        tract_hub.push_to_hub(checkpoint_copy, "org/name", dry_run=True, folder=folder)
    assert not folder.exists()
    _assert_nothing_leaked(checkpoint_copy.parent)


LOADED = [case for case in CASES if "config" in case[0] or "weights" in case[0]]  # the files from_pretrained reads


@pytest.mark.parametrize(("case", "damage", "fragment"), LOADED, ids=[case[0] for case in LOADED])
def test_from_pretrained_refuses(
    case: str, damage: Callable, fragment: str, checkpoint_copy: Path, outside: Path
) -> None:
    damage(checkpoint_copy, outside)
    with pytest.raises(CheckpointIntegrityError, match=fragment):
        tract_hub.from_pretrained(checkpoint_copy)


def test_a_link_inside_the_folder_is_followed(checkpoint_copy: Path) -> None:
    (checkpoint_copy / "notes.md").write_text("# notes\n")
    (checkpoint_copy / "README.md").unlink()
    os.symlink("notes.md", checkpoint_copy / "README.md")
    copy = pull(checkpoint_copy, checkpoint_copy.parent / "copy")
    assert (copy / "README.md").read_text() == "# notes\n" and not (copy / "README.md").is_symlink()


def test_hub_cache_blobs_stay_inside_the_repository_folder(
    saved_timm: Path, offline_hub: Path, outside: Path, tmp_path: Path
) -> None:
    """A cache snapshot links to its own blobs (accepted); a snapshot link elsewhere is refused."""
    snapshot = build_hf_cache(offline_hub, "org/name", saved_timm)
    assert tract_hub.from_pretrained("hf-hub:org/name") is not None  # the regular cache layout loads
    (snapshot / "README.md").unlink()
    os.symlink(outside, snapshot / "README.md")
    with pytest.raises(HubError, match="outside its folder"):
        pull("hf-hub:org/name", tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    assert COMMIT in str(snapshot)


def test_run_directory_files_are_confined(tmp_path: Path, outside: Path) -> None:
    """save_run reads a run directory's summary, metrics, recipe and weights: none may lead outside it."""
    for name in ("summary.json", "metrics.jsonl", "recipe.yaml", "checkpoints/best/model.safetensors"):
        run = write_run(tmp_path / name.replace("/", "_"), "run", lam=0.1)
        (run / name).unlink()
        os.symlink(outside, run / name)
        with pytest.raises(DataError, match="outside its folder"):
            save_run(run, tmp_path / "out" / name.replace("/", "_"))
        assert not (tmp_path / "out" / name.replace("/", "_")).exists()
    _assert_nothing_leaked(tmp_path)


def test_confined_file_refuses_traversal_in_the_name(tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    with pytest.raises(TrActError, match="outside its folder"):
        confined_file(folder / ".." / "elsewhere" / "secret.txt", folder, error=HubError)
    assert confined_file(outside, outside.parent, error=HubError) == outside.resolve()

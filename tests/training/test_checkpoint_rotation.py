"""Checkpoint rotation: a kill at any step of a save, twice in a row, never loses the newest complete checkpoint.

Fault injection: every step of a save (creating the staging folder, writing each file, flushing, each rename,
each removal) goes through a :class:`Killer`, which kills the save at step ``k``: the step is not done (or, for
a file write or a removal, half done) and nothing after it runs, not even the clean-up of ``except``/``finally``
blocks, as after SIGKILL. For every ``k`` of a first save, and then every ``j`` of the next save started from
what the first left (a resumed run), :func:`checkpoint_directory` must give a complete checkpoint of the newest
epoch whose save was published, and a later save must leave nothing but the checkpoint. One real SIGKILL test
runs the same story in subprocesses. Disk-full is injected as the writers' own errors, and once for real with a
file-size limit in a subprocess.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from safetensors import SafetensorError

from tract_hub.artifacts import rotation
from tract_hub.artifacts import weights as weights_module
from tract_hub.errors import DiskFullError
from tract_hub.training import checkpoint

REPO = Path(__file__).resolve().parents[2]


def weights(epoch: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((64,), float(epoch)), "b": torch.arange(8) + epoch}


def save(target: Path, epoch: int) -> None:
    checkpoint.save_checkpoint(target, weights(epoch), {"epoch": epoch, "optimizer": {"m": torch.ones(32) * epoch}})


def newest_epoch(target: Path) -> int | None:
    """The epoch of the checkpoint --resume would continue from; its files are complete and agree."""
    found = checkpoint.checkpoint_directory(target)
    if found is None:
        return None
    epoch = checkpoint.load_training_state(found)["epoch"]
    state = checkpoint.load_model_state(found)
    assert all(torch.equal(state[key], value) for key, value in weights(epoch).items()), f"{found} is not complete"
    return epoch


class Killed(BaseException):
    """The process was killed (a BaseException: no ``except Exception`` handles it)."""


class Killer:
    """Counts the steps of saves; at step ``at`` the process dies (``partial``: a write or removal half done)."""

    def __init__(self, at: int | None = None, partial: bool = False) -> None:
        self.at, self.partial, self.count, self.dead = at, partial, 0, False
        self.killed_halfway = False  # the step killed could be half done (a write or a removal)
        self.published: list[str] = []  # the names renamed to, in order

    def step(self, do: Callable[[], Any], half: Callable[[], None] | None = None) -> Any:
        if self.dead:
            raise Killed  # a killed process runs no clean-up
        if self.count == self.at:
            self.dead = True
            self.killed_halfway = half is not None
            if self.partial and half is not None:
                half()
            raise Killed
        self.count += 1
        return do()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def rename(source: Any, destination: Any) -> None:
            self.step(lambda: os.rename(source, destination))
            self.published.append(Path(destination).name)

        def rmtree(path: Any, ignore_errors: bool = False) -> None:
            def half() -> None:
                files = sorted(p for p in Path(path).rglob("*") if p.is_file())
                if files:
                    files[0].unlink()

            self.step(lambda: shutil.rmtree(path, ignore_errors=ignore_errors), half)

        def write(writer: Callable[..., None]) -> Callable[..., None]:
            def wrapped(value: Any, path: Any, *args: Any, **kwargs: Any) -> None:
                def half() -> None:
                    writer(value, path, *args, **kwargs)
                    data = Path(path).read_bytes()
                    Path(path).write_bytes(data[: len(data) // 2])

                self.step(lambda: writer(value, path, *args, **kwargs), half)

            return wrapped

        remove, flush, mkdtemp = rotation._remove, rotation._flush_tree, tempfile.mkdtemp
        monkeypatch.setattr(rotation, "os", SimpleNamespace(**{**vars(rotation.os), "rename": rename}))
        monkeypatch.setattr(rotation, "shutil", SimpleNamespace(**{**vars(shutil), "rmtree": rmtree}))
        monkeypatch.setattr(
            rotation, "tempfile", SimpleNamespace(mkdtemp=lambda **kw: self.step(lambda: mkdtemp(**kw)))
        )
        monkeypatch.setattr(rotation, "_remove", lambda path: self.step(lambda: remove(path), lambda: None))
        monkeypatch.setattr(rotation, "_flush_tree", lambda path: self.step(lambda: flush(path)))
        monkeypatch.setattr(checkpoint, "save_state_dict", write(checkpoint.save_state_dict))
        monkeypatch.setattr(checkpoint, "torch", SimpleNamespace(**{**vars(torch), "save": write(torch.save)}))


def run(target: Path, epoch: int, killer: Killer, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Save ``epoch`` under ``killer``; whether the save's new version was published before the kill."""
    with monkeypatch.context() as patch:
        killer.install(patch)
        with contextlib.suppress(Killed):
            save(target, epoch)
    return rotation.new_copy(target).name in killer.published


def steps_of(target: Path, epoch: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many steps a save of ``epoch`` takes from the state in ``target``'s folder (on a copy of it)."""
    copy = Path(tempfile.mkdtemp(dir=target.parent.parent)) / "copy"
    shutil.copytree(target.parent, copy)
    killer = Killer()
    run(copy / target.name, epoch, killer, monkeypatch)
    shutil.rmtree(copy.parent)
    return killer.count


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flushing to disk guards against power loss, not kills: skipped, to keep hundreds of saves fast."""
    monkeypatch.setattr(rotation, "os", SimpleNamespace(**{**vars(os), "fsync": lambda fd: None}))
    monkeypatch.setattr(weights_module, "fsync_file", lambda path: None)


def test_a_kill_at_every_step_twice_in_a_row_keeps_the_newest_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_fsync: None
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    save(first / "last", 1)
    kills = 0
    for k in range(steps_of(first / "last", 2, monkeypatch)):
        for partial in (False, True):
            root = tmp_path / f"k{k}{'p' if partial else ''}"
            shutil.copytree(first, root)
            killer = Killer(k, partial)
            published = run(root / "last", 2, killer, monkeypatch)
            if partial and not killer.killed_halfway:
                continue  # the same as the whole kill: a rename is atomic
            after_first = newest_epoch(root / "last")
            assert after_first == (2 if published else 1), f"kill at step {k}: resume from {after_first}"
            for j in range(steps_of(root / "last", 3, monkeypatch)):
                again = tmp_path / f"{root.name}j{j}"
                shutil.copytree(root, again)
                published_again = run(again / "last", 3, Killer(j), monkeypatch)
                after_second = newest_epoch(again / "last")
                expected = 3 if published_again else after_first
                assert after_second == expected, f"kills at steps {k} then {j}: resume from {after_second}"
                save(again / "last", 4)  # the next save finishes the rotation and removes every leftover
                assert newest_epoch(again / "last") == 4 and sorted(os.listdir(again)) == ["last"]
                shutil.rmtree(again)
                kills += 1
    assert kills >= 100, kills  # every step of the first save (whole and half done), then of the second


def test_staging_folders_of_killed_saves_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "last"
    save(target, 1)
    run(target, 2, Killer(4), monkeypatch)  # killed after its files were written, before publishing
    assert len(rotation.staging_directories(target)) == 1 and newest_epoch(target) == 1
    run(target, 3, Killer(5), monkeypatch)  # its recovery removed the first staging folder, then it was killed too
    assert len(rotation.staging_directories(target)) == 1 and newest_epoch(target) == 1
    save(target, 4)
    assert sorted(os.listdir(tmp_path)) == ["last"] and newest_epoch(target) == 4


def test_a_legacy_interrupted_save_is_recovered(tmp_path: Path) -> None:
    """The previous scheme could leave only ``.last.old``: it is still found and restored."""
    target = tmp_path / "last"
    save(target, 1)
    os.rename(target, rotation.previous_copy(target))
    assert newest_epoch(target) == 1
    save(target, 2)
    assert sorted(os.listdir(tmp_path)) == ["last"] and newest_epoch(target) == 2


#: One subprocess (the import is the slow part) forks the real processes: two savers killed with SIGKILL in a row,
#: then one that writes under a 1 MiB file-size limit (RLIMIT_FSIZE: writes past it fail with EFBIG, as on a full
#: disk). It prints what it saw as JSON.
_DRIVER = textwrap.dedent(
    """
    import json, os, resource, signal, sys, time, types
    import torch
    import tract_hub
    from tract_hub.errors import DiskFullError

    # import tract_hub.training.checkpoint without the package's __init__ (the trainer, data sets, timm: seconds)
    package = types.ModuleType("tract_hub.training")
    package.__path__ = [os.path.join(os.path.dirname(tract_hub.__file__), "training")]
    sys.modules["tract_hub.training"] = package
    from tract_hub.training import checkpoint

    # the parent uses no torch operation before its last fork (a forked child could deadlock in torch's threads)
    root = sys.argv[1]
    target, full = os.path.join(root, "run", "last"), os.path.join(root, "full", "last")
    report = {"resumed": [], "saved": []}

    def fork(work):
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read)
            work(write)
            os._exit(0)
        os.close(write)
        return child, os.fdopen(read)

    def save_over_the_limit(write):
        checkpoint.save_checkpoint(full, {"w": torch.zeros(16)}, {"epoch": 1})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            checkpoint.save_checkpoint(full, {"w": torch.zeros(1 << 20)}, {"epoch": 2})
            message = "saved"
        except DiskFullError as error:
            message = f"refused: {error}"
        os.write(write, message.encode())

    def saver(write):
        found = checkpoint.checkpoint_directory(target)
        epoch = checkpoint.load_training_state(found)["epoch"] if found else 0
        os.write(write, f"resumed {epoch}\\n".encode())
        while True:
            epoch += 1
            checkpoint.save_checkpoint(target, {"w": torch.full((1 << 18,), float(epoch))}, {"epoch": epoch})
            os.write(write, f"saved {epoch}\\n".encode())

    child, lines = fork(save_over_the_limit)
    report["disk_full"] = lines.read()
    os.waitpid(child, 0)
    for delay in (0.05, 0.11):
        child, lines = fork(saver)
        report["resumed"].append(int(lines.readline().split()[1]))
        for line in lines:
            if int(line.split()[1]) >= report["resumed"][-1] + 3:
                break
        time.sleep(delay)  # into the middle of another save
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        report["saved"].append(max([int(line.split()[1]) for line in lines] + [int(line.split()[1])]))
    found = checkpoint.checkpoint_directory(target)
    report["final"] = checkpoint.load_training_state(found)["epoch"]
    report["final_weights_agree"] = bool(
        torch.equal(checkpoint.load_model_state(found)["w"], torch.full((1 << 18,), float(report["final"])))
    )
    report["disk_full_kept"] = checkpoint.load_training_state(checkpoint.checkpoint_directory(full))["epoch"]
    report["disk_full_listing"] = sorted(os.listdir(os.path.dirname(full)))
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def real_processes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("real")
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow  # SIGKILL of real processes
def test_real_sigkill_twice_in_a_row(real_processes: dict[str, Any]) -> None:
    """Two savers killed with SIGKILL in a row; each resumes from the newest save, which the kill may have
    published just before the saver could say so."""
    (first, second), (saved_first, saved_second) = real_processes["resumed"], real_processes["saved"]
    assert first == 0 and second in (saved_first, saved_first + 1)
    assert real_processes["final"] in (saved_second, saved_second + 1) and real_processes["final_weights_agree"]


# -- disk full ---------------------------------------------------------------------------------------------------

_ENOSPC = OSError(errno.ENOSPC, "No space left on device")
_TORCH = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
_SAFETENSORS = SafetensorError("Error while serializing: I/O error: File too large (os error 27)")


def _failing(error: BaseException) -> Callable[..., None]:
    def write(value: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"partial")
        raise error

    return write


@pytest.mark.parametrize(
    ("writer", "error"),
    [("save_state_dict", _SAFETENSORS), ("save_state_dict", _ENOSPC), ("torch.save", _TORCH)],
    ids=["safetensors too large", "no space", "torch.save"],
)
def test_disk_full_is_the_projects_error_and_keeps_the_checkpoint(
    writer: str, error: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run" / "last"
    save(target, 1)
    if writer == "torch.save":
        monkeypatch.setattr(checkpoint, "torch", SimpleNamespace(**{**vars(torch), "save": _failing(error)}))
    else:
        monkeypatch.setattr(checkpoint, writer, _failing(error))
    with pytest.raises(DiskFullError, match=r"cannot write '.*/run/last': out of space .* needs about 0\.0 MiB"):
        save(target, 2)
    monkeypatch.undo()
    assert newest_epoch(target) == 1 and sorted(os.listdir(target.parent)) == ["last"]


@pytest.mark.slow  # the same real processes
def test_disk_full_for_real_with_a_file_size_limit(real_processes: dict[str, Any]) -> None:
    """The real writers, failing for lack of space (EFBIG under RLIMIT_FSIZE), give the project's error."""
    message = real_processes["disk_full"]
    assert message.startswith("refused: cannot write") and "needs about 4.0 MiB" in message, message
    assert real_processes["disk_full_kept"] == 1 and real_processes["disk_full_listing"] == ["last"]


def test_disk_full_when_saving_a_hub_checkpoint_or_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tract_hub
    from tract_hub.artifacts import files
    from tract_hub.models import create_model

    model = create_model("timm:test_resnet", num_classes=3)
    saved = tract_hub.save_pretrained(model, tmp_path / "c")
    before = {path.name: path.read_bytes() for path in saved.iterdir()}
    monkeypatch.setattr(weights_module, "save_file", _failing(_SAFETENSORS))
    with pytest.raises(DiskFullError, match=r"cannot write '.*/c': out of space .* needs about 1\.4 MiB"):
        tract_hub.save_pretrained(model, saved, overwrite=True)
    assert {path.name: path.read_bytes() for path in saved.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["c"]

    summary = tmp_path / "summary.json"
    summary.write_text("{}")
    monkeypatch.setattr(files.os, "fsync", lambda descriptor: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(DiskFullError, match=r"cannot write '.*summary.json': out of space"):
        files.write_text_atomic(summary, '{"epochs": 1}')
    monkeypatch.undo()
    assert summary.read_text() == "{}" and sorted(os.listdir(tmp_path)) == ["c", "summary.json"]


def test_run_directory_readers_find_a_checkpoint_left_mid_rotation(tmp_path: Path) -> None:
    """A run killed between steps 3 and 4 holds its best checkpoint as ``.best.new``: the hub still finds it."""
    from tract_hub.artifacts.run_dir import RunDirectory

    run = RunDirectory(tmp_path / "run")
    save(run.checkpoint("best"), 1)
    os.rename(run.checkpoint("best"), rotation.new_copy(run.checkpoint("best")))
    assert run.weights("best").parent.name == ".best.new"
    assert torch.equal(checkpoint.read_weights(run.weights("best"))["w"], weights(1)["w"])

"""``tract-hub ... | head``: a reader that stops early ends the command quietly (status 141), never a traceback.

Every subcommand prints through one entry point (:func:`tract_hub.cli.main`), so each is tried in process with a
standard output whose reader went away, and ``rules`` once for real, in a subprocess whose pipe is closed before
it writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tract_hub.cli import BROKEN_PIPE_STATUS, main

pytestmark = pytest.mark.slow  # subprocesses writing into closed pipes

REPO = Path(__file__).resolve().parents[1]


class ClosedPipe:
    """A standard output whose reader went away: every write and flush fails as a closed pipe does."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self.descriptor


@pytest.mark.parametrize(
    "argv",
    [
        ["rules"],
        ["rules", "--json"],
        ["locate", "timm:test_resnet"],
        ["train", "recipes/demo_digits.yaml", "--dry-run"],
        ["--help"],
    ],
    ids=["rules", "rules-json", "locate", "train-dry-run", "help"],
)
def test_a_closed_pipe_ends_the_command_quietly(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with open(tmp_path / "stdout", "w") as stand_in:  # the descriptor the quiet exit points at os.devnull
        monkeypatch.setattr(sys, "stdout", ClosedPipe(stand_in.fileno()))
        assert main(argv) == BROKEN_PIPE_STATUS
    monkeypatch.undo()
    assert "Traceback" not in capsys.readouterr().err


def test_rules_piped_into_a_reader_that_closed(tmp_path: Path) -> None:
    """As ``tract-hub rules | head -0``: the pipe is closed before the command writes anything."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tract_hub.cli", "rules", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == BROKEN_PIPE_STATUS
    assert errors == "", errors

"""Running a script of ``benchmarks/`` as a user would, for the smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str, returncode: int = 0, env: dict | None = None, timeout: float = 300) -> str:
    """``python benchmarks/<script> <args>`` from the repository root; its stdout, once its exit status is checked."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == returncode, done.stderr[-3000:]
    return done.stdout

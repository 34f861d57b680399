"""The benchmark scripts run (on tiny stand-ins, CPU): their figures are produced by code that works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # benchmark smokes, each a subprocess

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_gpu_step_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "gpu_step.json"
    printed = run("gpu_step.py", "--smoke", "--rounds", "1", "--json", str(out))
    record = json.loads(out.read_text())
    assert record["smoke"] is True and not record["skipped"]
    variants = {(row["model"], row["variant"]) for row in record["rows"]}
    assert {(m, v) for m in ("tiny-vit", "tiny-resnet") for v in ("vanilla", "per_backward", "exact")} <= variants
    assert all(row["median_ms"] > 0 for row in record["rows"])
    assert "| tiny ViT (smoke) | no | exact |" in printed


def test_exact_mode_benchmark_on_one_process(tmp_path: Path) -> None:
    out = tmp_path / "exact_mode.json"
    printed = run("exact_mode.py", "--models", "tiny-resnet", "--worlds", "1", "--rounds", "1", "--batch", "4",
                  "--json", str(out))  # fmt: skip
    result = json.loads(out.read_text())["results"]["1"]["tiny-resnet"]
    assert set(result["median_step_s"]) == {"vanilla", "per_backward", "exact"}
    assert result["all_reduced_bytes_per_step"] == 0  # one process: nothing to reduce
    assert "exact / per-backward" in printed

"""The benchmark scripts run (on tiny stand-ins, CPU): their figures are produced by code that works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmark_scripts import run_benchmark

pytestmark = pytest.mark.slow  # benchmark smokes, each a subprocess


def run(script: str, *args: str, returncode: int = 0, env: dict | None = None) -> str:
    return run_benchmark(script, *args, returncode=returncode, env=env)


def test_gpu_step_smoke_mode_runs_every_path_of_the_script(tmp_path: Path) -> None:
    """Tiny models on a CPU: every variant timed, a variant that raises recorded and dropped (the others go on),
    the summation path recorded, the record complete."""
    out = tmp_path / "gpu_step.json"
    printed = run("gpu_step.py", "--smoke", "--rounds", "1", "--json", str(out))
    record = json.loads(out.read_text())
    assert record["smoke"] is True and record["complete"] is True and not record["skipped"]
    configurations = record["configurations"]
    assert [(c["config"]["model"], c["config"]["precision"]) for c in configurations] == [
        ("tiny-vit", "fp32"),
        ("tiny-resnet", "bf16"),
    ]
    for configuration in configurations:
        assert configuration["summation"] in ("float32", "float64")
        assert "failing" in configuration["failures"]  # the guard: recorded, and the run went on
        variants = {row["variant"] for row in configuration["rows"]}
        assert {"vanilla", "per_backward", "exact"} <= variants and "failing" not in variants
        assert all(row["median_ms"] > 0 for row in configuration["rows"])
    assert "| tiny ViT (smoke) | 4 | fp32 | no | exact |" in printed
    assert "failing failed: RuntimeError" in printed


def test_gpu_step_writes_its_results_after_every_configuration(tmp_path: Path) -> None:
    """A run that dies after its first configuration leaves that configuration on disk."""
    out = tmp_path / "gpu_step.json"
    run("gpu_step.py", "--smoke", "--rounds", "1", "--json", str(out), returncode=3,
        env={"TRACT_HUB_GPU_STEP_ABORT_AFTER": "1"})  # fmt: skip
    record = json.loads(out.read_text())
    assert record["complete"] is False
    assert [c["config"]["model"] for c in record["configurations"]] == ["tiny-vit"]
    assert record["configurations"][0]["rows"]


def test_first_layer_benchmark_on_the_cifar_stem(tmp_path: Path) -> None:
    out = tmp_path / "first_layer"
    printed = run("first_layer.py", "--rounds", "1", "--cases", "cifar-stem-b128", "--out", str(out))
    (result,) = json.loads(out.with_suffix(".json").read_text())["results"]
    assert {"tract_hub_exact", "tract_hub_per_backward"} <= set(result["extra_s"])
    assert result["summation"] in ("float32", "float64")
    assert "| cifar-stem-b128 |" in printed and out.with_suffix(".md").exists()


def test_precision_accuracy_benchmark_on_the_cifar_stem(tmp_path: Path) -> None:
    out = tmp_path / "accuracy"
    run("precision_accuracy.py", "--layers", "CIFAR stem 3x3, b128", "--out", str(out))
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    assert len(results) == 6  # three input scales, two lams
    assert all(r["added"]["rule"] < r["floor"] for r in results)  # the CPU rule stays under the float32-G floor


def test_exact_mode_benchmark_on_one_process(tmp_path: Path) -> None:
    out = tmp_path / "exact_mode.json"
    printed = run("exact_mode.py", "--models", "tiny-resnet", "--worlds", "1", "--rounds", "1", "--batch", "4",
                  "--json", str(out))  # fmt: skip
    result = json.loads(out.read_text())["results"]["1"]["tiny-resnet"]
    assert set(result["median_step_s"]) == {"vanilla", "per_backward", "exact"}
    assert result["all_reduced_bytes_per_step"] == 0  # one process: nothing to reduce
    assert "exact / per-backward" in printed


def test_step_share_benchmark_on_tiny_models(tmp_path: Path) -> None:
    out = tmp_path / "share"
    printed = run("step_share.py", "--models", "tiny-resnet", "--rounds", "1", "--out", str(out))
    result = json.loads(out.with_suffix(".json").read_text())["results"]["tiny-resnet"]
    assert 0 < result["tract_share"]["exact"] < 1 and 0 < result["tract_share"]["per_backward"] < 1
    assert "TrAct's share of the step" in printed


TIMM_STYLE_TESTS = """
import pytest
import torch
from timm import create_model

import tract_hub


@pytest.mark.parametrize("model_name", ["test_resnet", "resnet50"])
def test_model_backward(model_name):
    model = create_model(model_name, num_classes=3)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert tract_hub.is_patched(model)


def test_without_a_model():
    assert tract_hub.is_patched(create_model("test_resnet"))


def test_a_failure():
    assert False, "boom"
"""


def test_timm_model_tests_patch_every_model_and_count_outcomes(tmp_path: Path) -> None:
    """The runner on a stand-in for timm's test_models.py: each model patched, resnet50 left out of the sample."""
    tests, out = tmp_path / "tests", tmp_path / "timm_model_tests"
    tests.mkdir()
    (tests / "test_models.py").write_text(TIMM_STYLE_TESTS)
    printed = run("timm_model_tests.py", "--timm-tests", str(tests), "--out", str(out))
    record = json.loads(out.with_suffix(".json").read_text())
    outcomes = {o["test"]: o["outcome"] for o in record["outcomes"]}
    assert outcomes == {
        "test_model_backward[test_resnet]": "passed",
        "test_without_a_model": "passed",
        "test_a_failure": "failed",
    }
    assert [p["patch"] for p in record["patches"]] == ["patched", "patched"]
    assert "| test_model_backward | 1 | 0 | 0 | 0 |" in printed and "boom" in printed

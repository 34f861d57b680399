"""The Fashion-MNIST benchmark and the transfer script run end to end on tiny files in the real idx format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmark_scripts import run_benchmark

from .training.builders import write_tiny_fashion_mnist

pytestmark = pytest.mark.slow  # each trains several runs in subprocesses


def run(script: str, *args: str) -> str:
    return run_benchmark(script, *args, timeout=600)  # several training runs each


def test_benchmark_writes_raw_lines_table_and_plot(tmp_path: Path) -> None:
    root = write_tiny_fashion_mnist(tmp_path / "data", train=256, test=64)
    out = tmp_path / "results" / "fm"
    printed = run("fashion_mnist.py", "--data-root", str(root), "--epochs", "2", "--train-samples", "256",
                  "--seeds", "0", "1", "--jobs", "2", "--output", str(out))  # fmt: skip
    lines = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    runs = {(line["recipe"], line["arm"], line["seed"]) for line in lines}
    assert len(lines) == 16 and len(runs) == 8  # 2 recipes x 2 arms x 2 seeds, one line per epoch
    assert {"arm", "seed", "epoch", "top1", "recipe"} <= set(lines[0]) and all(0 <= x["top1"] <= 100 for x in lines)
    assert {line["lam"] for line in lines if line["arm"] == "tract"} == {0.1}
    table = out.with_suffix(".md").read_text()
    assert "| fashion_mnist_resnet8 |" in table and "| fashion_mnist_vit |" in table and "CPU time" in table
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG") and "TrAct − vanilla" in printed
    run("fashion_mnist.py", "--data-root", str(root), "--epochs", "2", "--train-samples", "256",
        "--seeds", "0", "1", "--output", str(out))  # fmt: skip
    assert len(out.with_suffix(".jsonl").read_text().splitlines()) == 16  # every run was recorded: none trained twice
    assert out.with_suffix(".md").read_text() == table  # rendered again with the timing of the run that trained


def test_transfer_publishes_loads_back_and_fine_tunes(tmp_path: Path) -> None:
    root = write_tiny_fashion_mnist(tmp_path / "data", train=256, test=64)
    out = tmp_path / "results" / "transfer"
    run("fashion_mnist_transfer.py", "--data-root", str(root), "--epochs", "1", "--train-samples", "256",
        "--seeds", "0", "--fine-tune-epochs", "1", "--output", str(out))  # fmt: skip
    pretrained = json.loads((out / "pretrained.json").read_text())
    for arm in ("tract", "vanilla"):
        assert pretrained[arm]["leaked"] == []  # no path, user or host of this machine in the published folder
        plain = pretrained[arm]["plain_timm"]
        assert not plain["tract_hub_imported"] and plain["max_logit_difference"] == 0.0
        best = json.loads((out / arm / "config.json").read_text())["tract_hub"]["best"]["top1"]
        assert plain["top1"] == pytest.approx(100 * best)  # the published weights, timm's transform from config.json
        assert plain["config"]["input_size"] == [1, 28, 28]
        assert (out / arm / "README.md").is_file() and (out / arm / "config.json").is_file()
    lines = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert {line["arm"] for line in lines} == {"tract-pretrained", "vanilla-pretrained", "scratch"}
    assert "| scratch |" in out.with_suffix(".md").read_text()

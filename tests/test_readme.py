"""The README's usage example runs, and its test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tract_hub

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.mark.slow  # a ResNet-50 forward and backward at 224x224
def test_usage_example_runs_and_patches_the_first_layer() -> None:
    example = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    assert len([line for line in example.splitlines() if line.strip()]) == 4
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    (layer,) = tract_hub.patched_layers(namespace["model"])
    assert layer.name == "conv1"
    assert namespace["model"].conv1.weight.grad is not None


def test_ci_runs_the_readme_test_command() -> None:
    setup = re.search(r"## Set up and run\n.*?```bash\n(.*?)```", README, re.S).group(1)
    commands = [line for line in setup.splitlines() if line.strip() and not line.startswith("#")]
    (tests,) = [command for command in commands if "pytest" in command]
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci and "apt-get install -y --no-install-recommends dataset-fashion-mnist" in ci
    assert any(command.endswith("benchmarks/fashion_mnist.py") for command in commands)  # the real-data benchmark

"""tract-hub train and tract-hub demo on the command line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from tract_hub.cli import main

from .builders import QUICK


def test_dry_run_prints_the_resolved_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "recipes/demo_digits.yaml", "--set", "lam=null", "--data-root", "/data", "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["lam"] is None and resolved["data"]["root"] == "/data" and resolved["format_version"] == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "optimizer.lrr=1"], "unknown key 'optimizer.lrr'; did you mean 'lr'?"),
        (["--set", "model.architecture=timm:nope"], "neither a timm architecture"),
    ],
)
def test_recipe_errors_are_one_line(arguments, message, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "recipes/demo_digits.yaml", *arguments]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tract-hub train: error: ") and message in err[0]


def test_train_then_resume_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    sets = [arg for override in (*QUICK, "train.epochs=1") for arg in ("--set", override)]
    run_dir = tmp_path / "run"
    assert main(["train", "recipes/demo_digits.yaml", *sets, "--run-dir", str(run_dir), "--device", "cpu"]) == 0
    assert f"{run_dir}: 1 epoch, validation top1 " in capsys.readouterr().out
    # resuming the run directory itself: nothing left to train (a warning says so), the summary stays
    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        assert main(["train", str(run_dir), "--resume", "--device", "cpu"]) == 0
    assert "already finished its 1 epoch; nothing to train" in caplog.text
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 1
    assert main(["train", str(run_dir)]) == 2  # a run directory without --resume

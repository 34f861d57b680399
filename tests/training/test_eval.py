"""tract-hub eval: a run's checkpoints (trained and EMA weights) and a Hub checkpoint, evaluated again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.threads import single_thread
from tract_hub.cli import main
from tract_hub.errors import DataError, InvalidArgumentError
from tract_hub.hub import save_pretrained, save_run
from tract_hub.models import create_model
from tract_hub.training import train
from tract_hub.training.validate import validate

from .builders import quick_recipe


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with single_thread():
        recipe = quick_recipe("train.epochs=2", "train.ema={decay: 0.9}")
        return train(recipe, tmp_path_factory.mktemp("eval") / "run", device="cpu").run_dir


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.mark.parametrize("ema", [False, True], ids=["weights", "ema-weights"])
def test_eval_reproduces_the_runs_final_metrics(run_dir: Path, ema: bool) -> None:
    result = validate(run_dir, checkpoint="last", ema=ema, device="cpu")
    final = _summary(run_dir)["final"]
    prefix = "ema_" if ema else ""
    assert result.metrics["top1"] == final[f"{prefix}top1"] and result.metrics["top5"] == final[f"{prefix}top5"]
    assert result.metrics["val_loss"] == pytest.approx(final[f"{prefix}val_loss"], rel=1e-6)
    assert result.recorded == pytest.approx(result.metrics) and result.samples == 128
    assert result.details["epoch"] == 2 and result.details["ema"] is ema


def test_eval_of_the_best_checkpoint_matches_the_best_epoch(run_dir: Path) -> None:
    best = _summary(run_dir)["best"]
    result = validate(run_dir, device="cpu")
    assert result.details["epoch"] == best["epoch"] and result.metrics["top1"] == best["top1"]


def test_eval_command(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    assert main(["eval", str(run_dir), "--checkpoint", "last", "--device", "cpu", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    top1 = _summary(run_dir)["final"]["top1"]
    assert "128 validation images of digits" in printed and f"measured  top1 {100 * top1:.2f}%" in printed
    assert json.loads(out.read_text())["metrics"]["top1"] == top1
    # fewer images: no recorded figures to compare with
    assert main(["eval", str(run_dir), "--device", "cpu", "--set", "data.max_val_samples=32"]) == 0
    printed = capsys.readouterr().out
    assert "32 validation images" in printed and "recorded" not in printed


def test_eval_of_a_hub_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    checkpoint = save_run(run_dir, tmp_path / "checkpoint")
    result = validate(checkpoint, device="cpu")
    best = _summary(run_dir)["best"]
    assert result.dataset == "digits" and result.metrics["top1"] == best["top1"] == result.recorded["top1"]
    with pytest.raises(InvalidArgumentError, match="--ema applies to a run directory"):
        validate(checkpoint, ema=True, device="cpu")
    plain = save_pretrained(create_model("timm:tract_resnet8_cifar", num_classes=3), tmp_path / "plain")
    with pytest.raises(InvalidArgumentError, match="records no data set; name one"):
        validate(plain, device="cpu")


def test_eval_refuses_data_with_other_classes(run_dir: Path, image_folder_root: Path) -> None:
    other = [f"data.root={image_folder_root}", "data.image_size=8"]
    with pytest.raises(DataError, match="predicts 10 classes but image_folder has 3"):
        validate(run_dir, dataset="image_folder", overrides=other, device="cpu")

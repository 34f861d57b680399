"""One short real training run on CPU writes the run directory of the contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.threads import single_thread
from tract_hub.errors import InvalidArgumentError
from tract_hub.training import load_recipe, train

from .builders import quick_recipe

METRIC_KEYS = {
    "epoch", "train_loss", "val_loss", "top1", "top5", "lr", "epoch_time_s", "images_per_s", "tract",
}  # fmt: skip
SUMMARY_KEYS = {
    "format_version", "name", "recipe_name", "model", "dataset", "num_classes", "lam", "exact", "first_layers",
    "epochs", "final", "best",
}  # fmt: skip


@pytest.fixture(scope="module")
def tract_run(tmp_path_factory: pytest.TempPathFactory):
    run_dir = tmp_path_factory.mktemp("runs") / "quick-tract"
    with single_thread():  # as the function-scoped fixture of conftest.py does for each test
        return train(quick_recipe("train.epochs=2"), run_dir, device="cpu")


def test_run_directory_layout(tract_run) -> None:
    run = tract_run.run_dir
    for name in ("recipe.yaml", "environment.json", "metrics.jsonl", "summary.json", "plots/curves.png"):
        assert (run / name).is_file(), name
    for which in ("last", "best"):
        assert {p.name for p in (run / "checkpoints" / which).iterdir()} == {"model.safetensors", "training_state.pt"}
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no leftovers of saves


def test_metrics_rows(tract_run) -> None:
    rows = [json.loads(line) for line in (tract_run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        assert set(row) == METRIC_KEYS
        assert row["tract"] == {"lam": 0.1, "exact": True}
        assert 0.0 <= row["top1"] <= row["top5"] <= 1.0 and row["images_per_s"] > 0
    assert rows[1]["train_loss"] < rows[0]["train_loss"]  # it learns


def test_summary_and_environment(tract_run) -> None:
    summary = json.loads((tract_run.run_dir / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["model"]["architecture"] == "timm:tract_resnet8_cifar"
    assert summary["model"]["kwargs"] == {"in_chans": 1, "num_classes": 10, "width": 4}
    assert summary["first_layers"] == ["conv1"] and summary["lam"] == 0.1 and summary["epochs"] == 2
    assert set(summary["final"]) == {"top1", "top5", "val_loss", "train_loss"}
    assert summary["best"]["epoch"] in (1, 2) and summary["recipe_name"] == "demo_digits"
    environment = json.loads((tract_run.run_dir / "environment.json").read_text())
    assert environment["world_size"] == 1 and environment["precision"] == "fp32"
    assert environment["tract_exact"]["enabled"] is True and "one process" in environment["tract_exact"]["reason"]
    assert set(environment["versions"]) == {"tract_hub", "torch", "torchvision", "timm", "python"}


def test_resolved_recipe_is_saved_and_reloads(tract_run) -> None:
    text = (tract_run.run_dir / "recipe.yaml").read_text()
    data = yaml.safe_load(text)
    assert list(data) == sorted(data) and data["train"]["epochs"] == 2
    assert load_recipe(tract_run.run_dir / "recipe.yaml") == quick_recipe("train.epochs=2")


def test_checkpoint_holds_the_model_state_dict(tract_run) -> None:
    last = tract_run.run_dir / "checkpoints" / "last"
    weights = load_file(str(last / "model.safetensors"))
    state = tract_run.model.state_dict()
    assert set(weights) == set(state)  # TrAct changes no key
    assert all(torch.equal(weights[key], state[key]) for key in state)
    training_state = torch.load(last / "training_state.pt", weights_only=True)
    assert training_state["epoch"] == 2 and training_state["global_step"] == 8
    assert {"optimizers", "schedulers", "scaler", "rng", "best"} <= set(training_state)


def test_existing_run_directory_is_not_overwritten(tract_run) -> None:
    with pytest.raises(InvalidArgumentError, match="already holds a run; pass --resume"):
        train(quick_recipe("train.epochs=2"), tract_run.run_dir, device="cpu")


def _environment(run: Path) -> dict:
    return json.loads((run / "environment.json").read_text())


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _check_accumulation(result, run: Path) -> None:
    environment = _environment(run)
    assert environment["tract_exact"]["enabled"] is True and result.summary.exact is True
    assert "train.accum_steps=2" in environment["tract_exact"]["reason"]
    assert environment["micro_batch_per_rank"] == 32


def _check_vanilla(result, run: Path) -> None:
    import tract_hub

    assert _rows(run)[0]["tract"] == {"lam": None, "exact": False} and result.summary.lam is None
    assert not tract_hub.is_patched(result.model) and result.summary.first_layers == ("conv1",)


def _check_two_optimizers(result, run: Path) -> None:
    state = torch.load(run / "checkpoints" / "last" / "training_state.pt", weights_only=True)
    assert len(state["optimizers"]) == 2 and len(state["schedulers"]) == 2


def _check_skipped_evaluation(result, run: Path) -> None:
    rows = _rows(run)
    assert rows[0]["top1"] is None and rows[1]["top1"] is not None and result.summary.best["epoch"] == 2


def _check_located(result, run: Path) -> None:
    import tract_hub

    (layer,) = tract_hub.patched_layers(result.model)
    assert layer.name == "conv1" and layer.found_by != "target"  # found by tract_hub's registry
    assert result.summary.first_layers == ("conv1",)


OPTIONS = [
    ("registry-locates-the-first-layer", ("target=null",), _check_located),
    ("accumulation-exact", ("train.accum_steps=2",), _check_accumulation),
    ("vanilla", ("lam=null",), _check_vanilla),
    ("bf16-channels-last", ("train.precision=bf16", "train.channels_last=true"), None),
    ("bce-mixup-cutmix", ("train.loss=bce", "train.mixup=0.8", "train.cutmix=1.0", "train.label_smoothing=0.1"), None),
    (
        "first-layer-sgd-rest-adam",
        ("optimizer.name=adam", "optimizer.lr=1e-3", "optimizer.first_layer={lr: 0.05}", "train.grad_clip=1.0"),
        _check_two_optimizers,
    ),
    (
        "loader-worker-skipped-eval",
        ("train.workers=1", "train.epochs=2", "train.eval_every=2"),
        _check_skipped_evaluation,
    ),
]


@pytest.mark.parametrize(("overrides", "check"), [o[1:] for o in OPTIONS], ids=[o[0] for o in OPTIONS])
def test_training_options(tmp_path: Path, overrides, check) -> None:
    run = tmp_path / "run"
    result = train(quick_recipe("train.epochs=1", *overrides), run, device="cpu")
    assert all(math.isfinite(row["train_loss"]) for row in _rows(run))
    assert 0.0 <= result.summary.final["top1"] <= 1.0
    if check is not None:
        check(result, run)


def test_fp16_on_cpu_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="needs a CUDA device"):
        train(quick_recipe("train.precision=fp16"), tmp_path / "run", device="cpu")

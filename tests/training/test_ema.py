"""--model-ema (train.ema): the EMA of the weights is evaluated, saved beside them, loads, and resumes exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import tract_hub
from tests.threads import single_thread
from tract_hub.models import create_model
from tract_hub.training import train
from tract_hub.training.ema import WeightEma
from tract_hub.training.recipe import EmaConfig

from .builders import quick_recipe

EMA = "train.ema={decay: 0.9}"


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory: pytest.TempPathFactory):
    with single_thread():
        return train(quick_recipe("train.epochs=2", EMA), tmp_path_factory.mktemp("ema") / "run", device="cpu")


def test_ema_weights_differ_and_load_into_the_architecture(ema_run) -> None:
    last = ema_run.run_dir / "checkpoints" / "last"
    weights, averaged = load_file(str(last / "model.safetensors")), load_file(str(last / "model_ema.safetensors"))
    assert set(averaged) == set(weights)  # the same keys: it is the same architecture
    assert any(not torch.equal(averaged[key], weights[key]) for key in weights if weights[key].is_floating_point())
    model = create_model("timm:tract_resnet8_cifar", **ema_run.summary.model.kwargs)
    model.load_state_dict(averaged, strict=True)
    assert (ema_run.run_dir / "checkpoints" / "best" / "model_ema.safetensors").is_file()


def test_ema_metrics_beside_the_trained_ones(ema_run) -> None:
    final = ema_run.summary.final
    assert {"top1", "top5", "val_loss", "ema_top1", "ema_top5", "ema_val_loss"} <= set(final)
    assert 0.0 <= final["ema_top1"] <= final["ema_top5"] <= 1.0 and final["ema_val_loss"] != final["val_loss"]


def test_the_ema_copy_is_not_patched_and_follows_timm() -> None:
    model = tract_hub.patch(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), lam=0.1, target="0")
    ema = WeightEma(model, EmaConfig(decay=0.75))
    assert tract_hub.is_patched(model) and not tract_hub.is_patched(ema.module)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model, step=1)  # the first update copies
    assert torch.equal(ema.module[0].weight, model[0].weight)
    with torch.no_grad():
        model[0].weight.add_(4.0)
    ema.update(model, step=2)  # then ema = 0.75 ema + 0.25 weights
    assert torch.allclose(ema.module[0].weight, before["0.weight"] + 1.0 + 0.25 * 4.0)

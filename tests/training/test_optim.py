"""Learning-rate schedules (warm-up, cosine, step decay at fractions of the run) and optimizer construction."""

from __future__ import annotations

import math

import pytest
import torch

from tract_hub.errors import RecipeError
from tract_hub.training.optim import build_optimizers, lr_factor_function
from tract_hub.training.recipe import FirstLayerOptimizerConfig, OptimizerConfig, ScheduleConfig

SCHEDULES = [
    # (config, total steps, steps per epoch, {step: expected factor})
    (ScheduleConfig("cosine"), 100, 10, {0: 1.0, 50: 0.5, 100: 0.0, 25: 0.5 * (1 + math.cos(math.pi / 4))}),
    (ScheduleConfig("cosine", min_lr_ratio=0.1), 100, 10, {0: 1.0, 100: 0.1, 50: 0.55}),
    (ScheduleConfig("cosine", warmup_epochs=1), 110, 10, {0: 0.1, 4: 0.5, 9: 1.0, 10: 1.0, 60: 0.5}),
    # the CIFAR-100 suite: x0.2 at 30/60/80% of 200 epochs (epochs 60, 120, 160)
    (
        ScheduleConfig("multistep", milestones=(0.3, 0.6, 0.8), gamma=0.2, warmup_epochs=1),
        2000,
        10,
        {0: 0.1, 9: 1.0, 599: 1.0, 600: 0.2, 1199: 0.2, 1200: 0.04, 1600: 0.008},
    ),
    (ScheduleConfig("constant"), 10, 5, {0: 1.0, 9: 1.0}),
]


@pytest.mark.parametrize(("config", "total", "per_epoch", "expected"), SCHEDULES)
def test_lr_factor(config: ScheduleConfig, total: int, per_epoch: int, expected: dict[int, float]) -> None:
    factor = lr_factor_function(config, total, per_epoch)
    for step, value in expected.items():
        assert factor(step) == pytest.approx(value), step


def test_133_epoch_variant_scales_the_milestones() -> None:
    factor = lr_factor_function(ScheduleConfig("multistep", milestones=(0.3, 0.6, 0.8), gamma=0.2), 133, 1)
    changes = [step for step in range(1, 133) if factor(step) != factor(step - 1)]
    assert changes == [40, 80, 106]


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )


def test_no_weight_decay_on_norm_and_bias() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    config = OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.05, decay_norm_and_bias=False)
    (optimizer,) = build_optimizers(model, config, first_layers=[])
    decays = sorted((group["weight_decay"], len(group["params"])) for group in optimizer.param_groups)
    assert decays == [(0.0, 3), (0.05, 1)]


def _decay_of(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict[str, float]:
    names = {id(p): name for name, p in model.named_parameters()}
    return {names[id(p)]: group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}


def test_deit3_no_weight_decay_on_position_embedding_class_token_norms_and_biases() -> None:
    import timm

    model = timm.create_model("deit3_small_patch16_224", img_size=32, depth=1, num_classes=10)
    assert {"pos_embed", "cls_token"} <= set(model.no_weight_decay())
    config = OptimizerConfig(name="lamb", lr=4e-3, weight_decay=0.05, decay_norm_and_bias=False)
    (optimizer,) = build_optimizers(model, config, first_layers=[])
    decay = _decay_of(optimizer, model)
    assert len(decay) == len(list(model.parameters()))  # every parameter, once
    decayed = sorted(name for name, value in decay.items() if value > 0)
    assert decayed == [
        "blocks.0.attn.proj.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.0.mlp.fc1.weight",
        "blocks.0.mlp.fc2.weight",
        "head.weight",
        "patch_embed.proj.weight",
    ]
    assert {decay[name] for name in decay if name not in decayed} == {0.0}
    assert decay["pos_embed"] == decay["cls_token"] == decay["blocks.0.ls1.gamma"] == 0.0  # 3-D, 3-D, 1-D


def test_no_weight_decay_patterns_are_shell_style_and_apply_with_a_first_layer_optimizer() -> None:
    class Model(torch.nn.Sequential):
        def no_weight_decay(self) -> set[str]:
            return {"1.*"}

    model = Model(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 1), torch.nn.Conv2d(4, 2, 1))
    config = OptimizerConfig(
        name="sgd", weight_decay=5e-4, decay_norm_and_bias=False, first_layer=FirstLayerOptimizerConfig()
    )
    rest, _ = build_optimizers(model, config, first_layers=["0"])
    assert _decay_of(rest, model) == {"1.weight": 0.0, "1.bias": 0.0, "2.weight": 5e-4, "2.bias": 0.0}
    config = OptimizerConfig(name="sgd", weight_decay=5e-4)  # decay_norm_and_bias=True: everything decays
    (optimizer,) = build_optimizers(model, config, first_layers=[])
    assert set(_decay_of(optimizer, model).values()) == {5e-4}


def test_first_layer_gets_its_own_optimizer() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    config = OptimizerConfig(name="adam", lr=1e-2, first_layer=FirstLayerOptimizerConfig(name="sgd", lr=0.08))
    rest, first = build_optimizers(model, config, first_layers=["0"])
    assert isinstance(rest, torch.optim.Adam) and isinstance(first, torch.optim.SGD)
    assert {id(p) for g in first.param_groups for p in g["params"]} == {id(model[0].weight), id(model[0].bias)}
    assert sum(len(g["params"]) for g in rest.param_groups) == 2
    with pytest.raises(RecipeError, match="set 'target'"):
        build_optimizers(model, config, first_layers=[])


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "lamb"])
def test_each_optimizer_steps(name: str) -> None:
    model = torch.nn.Linear(3, 2)
    (optimizer,) = build_optimizers(model, OptimizerConfig(name=name, lr=0.1, weight_decay=0.01), first_layers=[])
    before = model.weight.detach().clone()
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model.weight)

"""Optimizers and learning-rate schedules of the recipes.

The schedule is a factor of each optimizer's base learning rate, a pure function of the optimizer step (linear
warm-up, then cosine decay, step decay at fractions of the run, or constant), so it resumes exactly from the
step count stored in a checkpoint.

Example:
    >>> import torch
    >>> from tract_hub.training.recipe import OptimizerConfig, ScheduleConfig
    >>> model = torch.nn.Linear(4, 2)
    >>> optimizers = build_optimizers(model, OptimizerConfig(name="sgd", lr=0.1), first_layers=[])
    >>> factor = lr_factor_function(ScheduleConfig(name="cosine"), total_steps=100, steps_per_epoch=10)
    >>> factor(0), round(factor(50), 3), round(factor(100), 3)
    (1.0, 0.5, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import RecipeError
from .recipe import FirstLayerOptimizerConfig, OptimizerConfig, ScheduleConfig


def _param_groups(params: list[tuple[str, nn.Parameter]], weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    if decay_norm_and_bias or weight_decay == 0:
        return [{"params": [p for _, p in params], "weight_decay": weight_decay}]
    decay = [p for _, p in params if p.ndim > 1]
    no_decay = [p for _, p in params if p.ndim <= 1]
    return [
        g
        for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0})
        if g["params"]
    ]


def _make(name: str, groups: list[dict], config: OptimizerConfig | FirstLayerOptimizerConfig) -> torch.optim.Optimizer:
    lr = config.lr
    if name == "sgd":
        nesterov = getattr(config, "nesterov", False)
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=nesterov)
    betas = getattr(config, "betas", (0.9, 0.999))
    eps = getattr(config, "eps", 1e-8)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=eps)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    from timm.optim import Lamb

    return Lamb(groups, lr=lr, betas=betas, eps=eps)


def build_optimizers(
    model: nn.Module, config: OptimizerConfig, first_layers: Sequence[str]
) -> list[torch.optim.Optimizer]:
    """One optimizer over every trainable parameter, or two when ``config.first_layer`` gives the first layer
    (the modules named in ``first_layers``) its own optimizer (the paper's SGD-first-layer / Adam-rest ablation)."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if config.first_layer is None:
        return [_make(config.name, _param_groups(named, config.weight_decay, config.decay_norm_and_bias), config)]
    if not first_layers:
        raise RecipeError("optimizer.first_layer needs the first layer: set 'target' in the recipe")
    prefixes = tuple(f"{name}." for name in first_layers)
    first = [(n, p) for n, p in named if n.startswith(prefixes)]
    rest = [(n, p) for n, p in named if not n.startswith(prefixes)]
    if not first:
        raise RecipeError(f"optimizer.first_layer: no trainable parameter under {list(first_layers)}")
    head = config.first_layer
    return [
        _make(config.name, _param_groups(rest, config.weight_decay, config.decay_norm_and_bias), config),
        _make(head.name, [{"params": [p for _, p in first], "weight_decay": head.weight_decay}], head),
    ]


def lr_factor_function(config: ScheduleConfig, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning-rate factor of optimizer step ``step`` (0-based) for a run of ``total_steps`` steps."""
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total_steps)
    milestones = [round(m * total_steps) for m in config.milestones]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.name == "constant":
            return 1.0
        if config.name == "multistep":
            return config.gamma ** sum(step >= m for m in milestones)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_schedulers(
    optimizers: Sequence[torch.optim.Optimizer], config: ScheduleConfig, total_steps: int, steps_per_epoch: int
) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """One LambdaLR per optimizer, stepped once per optimizer step."""
    factor = lr_factor_function(config, total_steps, steps_per_epoch)
    return [torch.optim.lr_scheduler.LambdaLR(optimizer, factor) for optimizer in optimizers]

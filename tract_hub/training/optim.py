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

import fnmatch
import math
from collections.abc import Callable, Collection, Sequence

import torch
from torch import nn

from ..errors import RecipeError
from .recipe import FirstLayerOptimizerConfig, OptimizerConfig, ScheduleConfig


def no_weight_decay_patterns(model: nn.Module) -> frozenset[str]:
    """The model's own ``no_weight_decay()`` names (timm's ViTs: ``pos_embed``, ``cls_token``, ...), or none."""
    method = getattr(model, "no_weight_decay", None)
    return frozenset(method()) if callable(method) else frozenset()


def is_decayed(name: str, param: nn.Parameter, skip: Collection[str]) -> bool:
    """timm's rule (``param_groups_weight_decay``): no weight decay on 1-D parameters (norms), biases, and the
    names the model lists in ``no_weight_decay()`` (shell-style patterns)."""
    if param.ndim <= 1 or name.endswith(".bias"):
        return False
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in skip)


def _param_groups(
    params: list[tuple[str, nn.Parameter]], weight_decay: float, decay_norm_and_bias: bool, skip: Collection[str] = ()
) -> list[dict]:
    if decay_norm_and_bias or weight_decay == 0:
        return [{"params": [p for _, p in params], "weight_decay": weight_decay}]
    decay = [p for name, p in params if is_decayed(name, p, skip)]
    no_decay = [p for name, p in params if not is_decayed(name, p, skip)]
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
    (the modules named in ``first_layers``) its own optimizer (the paper's SGD-first-layer / Adam-rest ablation).

    With ``decay_norm_and_bias=False``, weight decay skips what timm's optimizer factory skips: 1-D parameters,
    biases, and the parameters the model names in ``no_weight_decay()`` (a ViT's ``pos_embed``, ``cls_token``).
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    skip = no_weight_decay_patterns(model)
    if config.first_layer is None:
        return [_make(config.name, _param_groups(named, config.weight_decay, config.decay_norm_and_bias, skip), config)]
    if not first_layers:
        raise RecipeError("optimizer.first_layer needs the first layer: set 'target' in the recipe")
    prefixes = tuple(f"{name}." for name in first_layers)
    first = [(n, p) for n, p in named if n.startswith(prefixes)]
    rest = [(n, p) for n, p in named if not n.startswith(prefixes)]
    if not first:
        raise RecipeError(f"optimizer.first_layer: no trainable parameter under {list(first_layers)}")
    head = config.first_layer
    return [
        _make(config.name, _param_groups(rest, config.weight_decay, config.decay_norm_and_bias, skip), config),
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

"""The demo's recipe, embedded so that ``tract-hub demo`` runs from an installed package.

``recipes/demo_digits.yaml`` holds the same recipe as a file (a test keeps them equal).

Example:
    >>> demo_recipe(["train.epochs=2"]).train.epochs
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .recipe import Recipe, recipe_from_data

DEMO_RECIPE: dict[str, Any] = {
    "format_version": 1,
    "name": "demo_digits",
    "description": (
        "Digits 16x16 with fixed per-image contrast/brightness changes, CIFAR-style ResNet-8, SGD momentum 0.9, "
        "lr 0.08, batch 128, cosine schedule, 8 epochs (the budget where TrAct's gain over vanilla is clearest)."
    ),
    "lam": 0.1,
    "target": "conv1",
    "model": {"architecture": "timm:tract_resnet8_cifar", "kwargs": {"in_chans": 1}},
    "data": {
        "dataset": "digits",
        "digits": {
            "size": 16,
            "contrast": [0.1, 1.0],
            "brightness": True,
            "corruption_seed": 0,
            "test_fraction": 0.25,
            "split_seed": 0,
        },
    },
    "optimizer": {"name": "sgd", "lr": 0.08, "momentum": 0.9, "weight_decay": 0.0},
    "schedule": {"name": "cosine"},
    "train": {"epochs": 8, "batch_size": 128, "seed": 0},
}


def demo_recipe(overrides: Sequence[str] = ()) -> Recipe:
    """The demo recipe with ``KEY=VALUE`` overrides applied."""
    return recipe_from_data(DEMO_RECIPE, overrides, source="the demo recipe")

"""Training: recipes (validated YAML), data sources, the trainer, run directories, comparison and the demo.

Example:
    >>> from tract_hub.training import load_recipe
    >>> recipe = load_recipe("recipes/demo_digits.yaml", overrides=["lam=null"])
    >>> recipe.variant
    'vanilla'
"""

from __future__ import annotations

from .compare import compare_runs
from .data import build_datasets
from .demo import run_demo
from .loop import TrainResult, default_run_dir, train
from .recipe import FORMAT_VERSION, Recipe, dump_recipe, load_recipe, recipe_from_data, with_overrides
from .run_dir import RunDirectory

__all__ = [
    "FORMAT_VERSION",
    "Recipe",
    "RunDirectory",
    "TrainResult",
    "build_datasets",
    "compare_runs",
    "default_run_dir",
    "dump_recipe",
    "load_recipe",
    "recipe_from_data",
    "run_demo",
    "train",
    "with_overrides",
]

"""Training: recipes (validated YAML), data sources, the trainer, evaluation of trained weights and the
comparison of runs.

The run directory the trainer writes is :class:`tract_hub.artifacts.RunDirectory` (re-exported here); the demo
that trains and then publishes is :mod:`tract_hub.demo`.

Example:
    >>> from tract_hub.training import load_recipe
    >>> recipe = load_recipe("recipes/demo_digits.yaml", overrides=["lam=null"])
    >>> recipe.variant
    'vanilla'
"""

from __future__ import annotations

from ..artifacts.run_dir import RunDirectory
from .compare import compare_runs
from .data import build_datasets
from .loop import TrainResult, default_run_dir, train
from .recipe import FORMAT_VERSION, Recipe, dump_recipe, load_recipe, recipe_from_data, with_overrides
from .sinks import ReportOptions
from .validate import EvalResult, validate

__all__ = [
    "FORMAT_VERSION",
    "EvalResult",
    "Recipe",
    "ReportOptions",
    "RunDirectory",
    "TrainResult",
    "build_datasets",
    "compare_runs",
    "default_run_dir",
    "dump_recipe",
    "load_recipe",
    "recipe_from_data",
    "train",
    "validate",
    "with_overrides",
]

"""Every recipe in recipes/ validates, and the demo recipe file matches the one the package embeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tract_hub.training import dump_recipe, load_recipe, recipe_from_data
from tract_hub.training.demo_recipe import DEMO_RECIPE
from tract_hub.training.recipe import recipe_to_data

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_recipes_exist() -> None:
    assert len(RECIPES) >= 60


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates_and_round_trips(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem  # the file name is the experiment's name
    assert recipe_from_data(yaml.safe_load(dump_recipe(recipe))) == recipe
    vanilla = load_recipe(path, ["lam=null"])
    assert vanilla.lam is None and vanilla.variant == "vanilla"


def test_demo_recipe_file_matches_the_embedded_recipe() -> None:
    from_file = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "demo_digits.yaml")
    assert recipe_to_data(from_file) == recipe_to_data(recipe_from_data(DEMO_RECIPE))

"""Where a model's first layer is written down: in the registry's rules and in the model families
(:mod:`tract_hub.models`, whose timm configs carry ``first_conv``), and nowhere else in the library (DESIGN,
decision 6). Read from the source with ``ast``; a recipe's ``target`` key is the user's own choice of layer
(the first tier of the registry's order) and may name one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tract_hub
from tract_hub.models.faster_rcnn_vgg import VggFasterRCNN
from tract_hub.registry import list_rules
from tract_hub.registry.rules import class_name

ROOT = Path(tract_hub.__file__).parent

#: The packages that may name first layers.
OWNERS = {"registry", "models"}

#: A constant that would name a first layer by hand (``FIRST_LAYER = "backbone.0"``).
FIRST_LAYER_CONSTANT = re.compile(r"^_?(FIRST_(LAYER|CONV)S?|STEMS?)$")

#: Every first-layer name or pattern the built-in rules know.
KNOWN_NAMES = frozenset(pattern for rule in list_rules() if rule.builtin for pattern in rule.layers)

SOURCES = sorted(
    path for path in ROOT.rglob("*.py") if path.relative_to(ROOT).parts[0] not in OWNERS and path.name != "__main__.py"
)


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, nodes) and node.body and isinstance(node.body[0], ast.Expr)
    }


def _recipe_targets(tree: ast.AST) -> set[int]:
    """The values of ``"target"`` keys in dict literals (a recipe naming its layer)."""
    return {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
        if isinstance(key, ast.Constant) and key.value == "target"
    }


def first_layer_names_in(source: str) -> list[str]:
    """The constants of ``source`` that name a first layer, and the names of constants meant to hold one."""
    tree = ast.parse(source)
    skipped = _docstrings(tree) | _recipe_targets(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and FIRST_LAYER_CONSTANT.search(node.id):
            found.append(node.id)
        elif isinstance(node, ast.Constant) and id(node) not in skipped and node.value in KNOWN_NAMES:
            found.append(repr(node.value))
    return found


def test_the_checker_finds_a_hand_written_first_layer() -> None:
    assert first_layer_names_in('FIRST_LAYER = "backbone.0"') == ["FIRST_LAYER", "'backbone.0'"]
    assert first_layer_names_in('patch(model, target="conv1")') == ["'conv1'"]
    assert first_layer_names_in('def f():\n    """conv1"""\n    return {"target": "conv1"}') == []


@pytest.mark.parametrize("path", SOURCES, ids=[str(path.relative_to(ROOT)) for path in SOURCES])
def test_no_first_layer_name_outside_the_registry_and_the_model_families(path: Path) -> None:
    found = first_layer_names_in(path.read_text(encoding="utf-8"))
    assert not found, (
        f"{path.relative_to(ROOT.parent)} names first layers {found}: give the model family a rule in "
        "tract_hub/registry/builtin.py (or a first_conv in its timm config) and ask tract_hub.registry.locate"
    )


def test_the_project_detector_is_named_by_its_rule() -> None:
    (rule,) = [rule for rule in list_rules() if rule.name == "tract_hub.faster_rcnn_vgg"]
    assert rule.match == (class_name(VggFasterRCNN),) and rule.builtin

"""The recipe schema: unknown keys name the closest valid key, types and values are checked, overrides work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tract_hub.errors import RecipeError
from tract_hub.training import dump_recipe, load_recipe
from tract_hub.training.demo_recipe import demo_recipe
from tract_hub.training.recipe import parse_override, parse_yaml

BAD_OVERRIDES = [
    (["optimizer.lrr=0.1"], "unknown key 'optimizer.lrr'; did you mean 'lr'?"),
    (["trian.epochs=3"], "unknown key 'trian'; did you mean 'train'?"),
    (["data.digits.sise=8"], "unknown key 'data.digits.sise'; did you mean 'size'?"),
    (["train.epochs=2.5"], "train.epochs=2.5 (float) is not int"),
    (["train.epochs=many"], "train.epochs='many' (str) is not int"),
    (["train.epochs=0"], "train.epochs=0 must be > 0"),
    (["lam=-0.1"], "lam=-0.1 must be a positive number"),
    (["lam=true"], "lam=True (bool) is not float or null"),
    (
        ["optimizer.name=sgdd"],
        "optimizer.name='sgdd' is not one of 'sgd', 'adam', 'adamw', 'lamb'; did you mean 'sgd'?",
    ),
    (["data.dataset=cifar"], "data.dataset: data set 'cifar' is not known; did you mean 'cifar10'?"),
    (["schedule.milestones=[0.6, 0.3]"], "must be increasing fractions of the run"),
    (["schedule.name=multistep", "schedule.milestones=[60, 120]"], "must be increasing fractions of the run"),
    (["train.batch_size=100", "train.accum_steps=3"], "not divisible by train.accum_steps=3"),
    (["model.architecture=timm:resnet9000"], "model.architecture: 'timm:resnet9000' is neither"),
    (["model.architecture=os.system"], "model.architecture: 'os.system' is neither"),
    (["model.init=some/dir"], "give exactly one of 'architecture'"),
    (["model.kwargs.pretrained=true"], "model.kwargs.pretrained is not allowed"),
    (["format_version=2"], "format_version=2 is not supported"),
    (["name=my run"], "must be letters, digits"),
    (["data.digits.contrast=[0.5, 0.1]"], "digits.contrast=[0.5, 0.1] must satisfy"),
    (["data.digits.contrast=[0.5]"], "must have 2 items"),
    (["model=3"], "section 'model' must be a mapping"),
    (["lam.x=1"], "'lam' is a value (0.1), not a section"),
    (["model.detector=faster_rcnn"], "model.detector='faster_rcnn' builds on a torchvision VGG backbone"),
    (["data.dataset=image_folder"], "data.image_size is required for dataset='image_folder'"),
    (["optimizer.first_layer={name: sgd, lr: 0}"], "optimizer.first_layer.lr=0.0 must be > 0"),
    (["train"], "is not KEY=VALUE"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_OVERRIDES, ids=[" ".join(o) for o, _ in BAD_OVERRIDES])
def test_bad_values_are_refused_with_a_clear_message(overrides: list[str], message: str) -> None:
    with pytest.raises(RecipeError) as error:
        demo_recipe(overrides)
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


GOOD_OVERRIDES = [
    ("lam=null", lambda r: r.lam is None),
    ("lam=0.2", lambda r: r.lam == 0.2),
    ("optimizer.lr=1e-3", lambda r: r.optimizer.lr == 0.001),  # YAML 1.1 would read a string
    ("train.epochs=3", lambda r: r.train.epochs == 3),
    ("optimizer.lr=1", lambda r: r.optimizer.lr == 1.0 and isinstance(r.optimizer.lr, float)),
    ("target=[conv1]", lambda r: r.target == ["conv1"]),
    ("data.digits.contrast=[1, 1]", lambda r: r.data.digits.contrast == (1.0, 1.0)),
    ("optimizer.first_layer={lr: 0.5}", lambda r: r.optimizer.first_layer.lr == 0.5),
]


@pytest.mark.parametrize(("override", "check"), GOOD_OVERRIDES, ids=[o for o, _ in GOOD_OVERRIDES])
def test_overrides_are_read_as_yaml(override: str, check) -> None:
    assert check(demo_recipe([override]))


def test_resolved_recipe_is_sorted_and_complete() -> None:
    text = dump_recipe(demo_recipe())
    top_level = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert top_level == sorted(top_level)
    assert "warmup_epochs: 0.0" in text and "precision: fp32" in text  # defaults are written too


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "duplicate key 'a' at line 2"),
        ("a: [1\n", "is not valid YAML"),
    ],
)
def test_yaml_errors(text: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        parse_yaml(text)


def test_load_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="is not a file"):
        load_recipe(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(listed)
    incomplete = tmp_path / "incomplete.yaml"
    incomplete.write_text("name: x\nmodel: {architecture: timm:resnet18}\ndata: {dataset: digits}\n")
    with pytest.raises(RecipeError, match="missing key 'train'"):
        load_recipe(incomplete)


def test_parse_override_keeps_equals_signs_in_values() -> None:
    assert parse_override("description=a=b") == ("description", "a=b")

"""What a checkpoint publishes of its run: no machine's paths, only the sections that apply, timm's data config."""

from __future__ import annotations

import pytest

from tract_hub.artifacts.publish import data_config, published_init, published_recipe
from tract_hub.training.recipe import recipe_from_data, recipe_to_data

# (model.init as the run recorded it, as published)
INITS = [
    ("hf-hub:org/base@v2", "hf-hub:org/base@v2"),
    ("org/base", "org/base"),
    ("/home/alice/ckpt/resnet8-tract", "resnet8-tract"),
    ("/home/alice/ckpt/resnet8-tract/", "resnet8-tract"),
    ("local-dir:/home/alice/ckpt/vit", "vit"),
    ("~/ckpt/vit", "vit"),
    ("../alice/vit", "vit"),
    ("C:\\Users\\alice\\ckpt\\vit", "vit"),
    (None, None),
]


@pytest.mark.parametrize(("init", "published"), INITS, ids=[str(i) for i, _ in INITS])
def test_a_local_init_keeps_only_its_folders_name(init: str | None, published: str | None) -> None:
    assert published_init(init) == published


def _recipe(dataset: str, **data: object) -> dict:
    image_size = {"image_size": 64} if dataset in ("image_folder", "imagenet") else {}
    detector = {"detector": "faster_rcnn"} if dataset == "voc2007" else {}
    architecture = "torchvision:vgg16" if dataset == "voc2007" else "timm:tract_resnet8_cifar"
    raw = {
        "name": "r",
        "model": {"architecture": architecture, **detector},
        "data": {"dataset": dataset, "root": "/home/alice/data", "download": True, **image_size, **data},
        "train": {"epochs": 1, "batch_size": 8},
    }
    return recipe_to_data(recipe_from_data(raw))  # every key, as the trainer's recipe.yaml has it


# (data set, data keys that remain besides the common ones, model keys that remain)
SECTIONS = [
    ("fashion_mnist", set(), {"detector"}),
    ("digits", {"digits"}, {"detector"}),
    ("image_folder", {"train_split", "val_split"}, {"detector"}),
    ("voc2007", set(), {"detector", "detection"}),
]


@pytest.mark.parametrize(("dataset", "data_keys", "model_keys"), SECTIONS, ids=[s[0] for s in SECTIONS])
def test_only_what_applies_and_no_machine_path(dataset: str, data_keys: set, model_keys: set) -> None:
    full = _recipe(dataset)
    published = published_recipe(full)
    removed_data = set(full["data"]) - set(published["data"])
    assert {"root", "download"} <= removed_data
    assert {"digits", "train_split", "val_split"} - data_keys <= removed_data
    assert not data_keys & removed_data
    assert ("detection" in published["model"]) == ("detection" in model_keys)
    assert "/home/alice" not in repr(published) and full["data"]["root"] == "/home/alice/data"  # a copy
    assert published_recipe(published) == published


# (data keys, timm's data config)
CONFIGS = [
    ({"dataset": "fashion_mnist"}, {"input_size": (1, 28, 28), "mean": (0.286,), "std": (0.353,), "crop_pct": 1.0}),
    ({"dataset": "cifar10", "normalize": "unit"}, {"input_size": (3, 32, 32), "mean": (0.0,) * 3, "std": (1.0,) * 3}),
    ({"dataset": "fashion_mnist", "normalize": "raw255"}, {"mean": (0.0,), "std": (1 / 255,)}),
    ({"dataset": "imagenet", "image_size": 160, "eval_crop_pct": 0.9}, {"input_size": (3, 160, 160), "crop_pct": 0.9}),
    ({"dataset": "cifar10", "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}, {"mean": (0.5,) * 3, "std": (0.2,) * 3}),
]


@pytest.mark.parametrize(("data", "expected"), CONFIGS, ids=[str(d) for d, _ in CONFIGS])
def test_timms_data_config_is_the_evaluation_preprocessing(data: dict, expected: dict) -> None:
    config = data_config({"data": data})
    assert config is not None
    for key, value in expected.items():
        assert config[key] == (pytest.approx(value) if isinstance(value, float) else value), key


@pytest.mark.parametrize("recipe", [None, {}, {"data": {"dataset": "digits"}}, {"data": {"dataset": "voc2007"}}])
def test_no_data_config_where_the_table_does_not_know_the_preprocessing(recipe: dict | None) -> None:
    assert data_config(recipe) is None

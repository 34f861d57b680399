"""The data-set table: one row per data set, and everything that names data sets derives from it."""

from __future__ import annotations

import argparse

import pytest

from tract_hub.artifacts.datasets import DATASETS, DatasetInfo, dataset_info, hub_dataset, task_of
from tract_hub.artifacts.task import CLASSIFICATION, DETECTION
from tract_hub.cli.recipe_flags import add_recipe_flags
from tract_hub.errors import InvalidArgumentError, RecipeError
from tract_hub.hub.markdown import is_repo_id
from tract_hub.training.data import LOADERS, build_datasets
from tract_hub.training.recipe import DataConfig

ROWS = list(DATASETS.values())


def test_every_row_names_a_loader_and_every_loader_serves_a_row() -> None:
    assert {row.loader for row in ROWS} == set(LOADERS)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_every_row_is_a_valid_recipe_data_set(row: DatasetInfo) -> None:
    config = DataConfig(dataset=row.name, image_size=32 if row.needs_size else None)
    assert config.info is row and task_of(row.name) is row.task
    assert row.hub_id is None or is_repo_id(row.hub_id)
    assert hub_dataset(row.name) == (row.hub_id or row.name)
    assert row.mean is None or len(row.mean) == len(row.std or ()) == row.channels


def test_an_offline_loader_gives_what_its_row_says() -> None:
    splits = build_datasets(DataConfig(dataset="digits"))
    row = DATASETS["digits"]
    assert (splits.num_classes, splits.in_chans) == (row.num_classes, row.channels)


def test_the_formats_class_lists_agree_with_the_table() -> None:
    """The loaders report the table's class counts; the file formats' own class lists must agree with them."""
    from tract_hub.training.data import cifar, digits, voc

    assert {name: DATASETS[name].num_classes for name in cifar.LAYOUTS} == {
        name: layout.num_classes for name, layout in cifar.LAYOUTS.items()
    }
    assert DATASETS["voc2007"].num_classes == voc.NUM_DETECTION_CLASSES == len(voc.VOC_CLASSES) + 1
    assert DATASETS["digits"].num_classes == digits.NUM_CLASSES


def test_tasks_come_from_the_table() -> None:
    assert [name for name, row in DATASETS.items() if row.task is DETECTION] == ["voc2007"]
    assert task_of("fashion_mnist") is CLASSIFICATION and task_of("something recorded elsewhere") is CLASSIFICATION


@pytest.mark.parametrize(
    ("name", "message"),
    [("fashionmnist", "did you mean 'fashion_mnist'?"), ("cifar", "did you mean 'cifar10'?"), ("", "is not known")],
)
def test_an_unknown_name_is_refused_with_the_closest_one(name: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        dataset_info(name)
    with pytest.raises(RecipeError, match=rf"data.dataset: data set .* {message}"):
        DataConfig(dataset=name)


def test_a_row_whose_statistics_do_not_fit_its_channels_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="one value per channel"):
        DatasetInfo("x", CLASSIFICATION, 10, 1, (0.5, 0.5, 0.5), (0.2, 0.2, 0.2), "cifar")


def test_the_command_line_lists_the_table() -> None:
    parser = argparse.ArgumentParser()
    add_recipe_flags(parser)
    help_text = next(action.help for action in parser._actions if "--data" in action.option_strings)
    assert help_text == ", ".join(DATASETS) + " [data.dataset]"

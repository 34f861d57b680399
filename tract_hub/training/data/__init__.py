"""Data sources of the recipes: one function turns ``recipe.data`` into train and validation data sets.

What a data set is (classes, channels, normalization, default resolution, task) is its row of the data-set
table (:mod:`tract_hub.artifacts.datasets`); the row names the loader here (:data:`LOADERS`) that reads its
files. Nothing is downloaded unless ``data.download`` is true. The data root is ``data.root`` (``--data-root``
on the command line sets it), else ``$TRACT_HUB_DATA``, else the data set's own default place (Debian's folder
for Fashion-MNIST), else ``./data``.

Example:
    >>> from tract_hub.training.recipe import DataConfig
    >>> splits = build_datasets(DataConfig(dataset="digits"))
    >>> len(splits.train), len(splits.val), splits.num_classes, splits.in_chans
    (1347, 450, 10, 1)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from ...artifacts.datasets import DatasetInfo, dataset_info
from ...errors import DataError
from ..recipe import DataConfig
from . import cifar, digits, fashion_mnist, folders, voc
from .transforms import build_image_transform

logger = logging.getLogger(__name__)


@dataclass
class DataSplits:
    """What the trainer needs from a data source."""

    train: Dataset
    val: Dataset
    num_classes: int
    in_chans: int
    collate: Callable[..., Any] | None = None


def resolve_root(config: DataConfig) -> Path:
    """``data.root``, else ``$TRACT_HUB_DATA``, else ``./data``."""
    return Path(config.root or os.environ.get("TRACT_HUB_DATA") or "data").expanduser()


def candidate_roots(config: DataConfig, info: DatasetInfo) -> list[Path]:
    """Where to look for the files: ``data.root`` alone when given; else ``$TRACT_HUB_DATA``, the data set's own
    default place and ``./data``, in this order."""
    if config.root:
        return [Path(config.root).expanduser()]
    env = os.environ.get("TRACT_HUB_DATA")
    places = [Path(env).expanduser()] if env else []
    places += [Path(info.default_root)] if info.default_root else []
    return [*places, Path("data")]


def _limit(dataset: Dataset, count: int | None) -> Dataset:
    if count is None or count >= len(dataset):  # type: ignore[arg-type]
        return dataset
    return Subset(dataset, range(count))


def _stats(config: DataConfig, info: DatasetInfo) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if config.mean is not None and config.std is not None:
        return config.mean, config.std
    if info.mean is None or info.std is None:  # pragma: no cover - a table row without statistics is measured
        raise DataError(f"data set {info.name!r} has no default mean and std; set data.mean and data.std")
    return info.mean, info.std


def _transforms(config: DataConfig, info: DatasetInfo) -> tuple[Any, Any]:
    size = config.image_size or info.image_size
    mean, std = _stats(config, info)
    common = {"normalize": config.normalize, "mean": mean, "std": std, "native_size": info.native_size}
    train = build_image_transform(
        config.augment, train=True, image_size=size, color_jitter=config.color_jitter, **common
    )
    val = build_image_transform(
        "none", train=False, image_size=config.eval_image_size or size, eval_crop_pct=config.eval_crop_pct, **common
    )
    return train, val


def _digits(config: DataConfig, info: DatasetInfo) -> DataSplits:
    split = digits.load_digits_split(config.digits)
    if config.mean is not None and config.std is not None:
        mean, std = config.mean, config.std
    else:
        mean, std = (float(split.train_images.mean()),), (float(split.train_images.std()),)

    def prepare(images: torch.Tensor) -> torch.Tensor:
        if config.normalize == "standard":
            return (images - mean[0]) / std[0]
        return images * 255.0 if config.normalize == "raw255" else images

    train = TensorDataset(prepare(split.train_images), split.train_labels)
    val = TensorDataset(prepare(split.test_images), split.test_labels)
    return DataSplits(train, val, int(info.num_classes or 0), info.channels)


def _fashion_mnist(config: DataConfig, info: DatasetInfo) -> DataSplits:
    places = candidate_roots(config, info)
    found = next((place for place in places if fashion_mnist.holds_files(place)), None)
    if found is None and config.download:
        found = resolve_root(config)  # a writable place: never the system package's folder
        fashion_mnist.download(found)
    if found is None:
        raise DataError(fashion_mnist.missing_message(places))
    splits = fashion_mnist.read_fashion_mnist(found)
    splits.train.transform, splits.test.transform = _transforms(config, info)
    return DataSplits(splits.train, splits.test, int(info.num_classes or 0), info.channels)


def _cifar(config: DataConfig, info: DatasetInfo) -> DataSplits:
    root, name = resolve_root(config), info.name
    if config.download and not cifar.cifar_folder(root, name).is_dir():
        cifar.download_cifar(root, name)
    train_tf, val_tf = _transforms(config, info)
    train = cifar.CifarDataset(cifar.read_cifar(root, name, train=True), train_tf)
    val = cifar.CifarDataset(cifar.read_cifar(root, name, train=False), val_tf)
    return DataSplits(train, val, int(info.num_classes or 0), info.channels)


def _image_folder(config: DataConfig, info: DatasetInfo) -> DataSplits:
    root = resolve_root(config)
    train_tf, val_tf = _transforms(config, info)
    train = folders.image_folder(root, config.train_split, train_tf)
    val = folders.image_folder(root, config.val_split, val_tf)
    folders.check_same_classes(train, val)
    return DataSplits(train, val, len(train.classes), info.channels)


def _torchvision_set(config: DataConfig, info: DatasetInfo) -> DataSplits:
    root = resolve_root(config)
    train_tf, val_tf = _transforms(config, info)
    common = {"download": config.download}
    train = folders.torchvision_split(info.name, root, train=True, transform=train_tf, **common)
    val = folders.torchvision_split(info.name, root, train=False, transform=val_tf, **common)
    return DataSplits(train, val, int(info.num_classes or 0), info.channels)


def _voc(config: DataConfig, info: DatasetInfo) -> DataSplits:
    root = resolve_root(config)
    if config.download and not voc.voc_folder(root).is_dir():
        voc.download_voc2007(root)
    train = voc.VocDetection(root, "trainval", flip=config.augment == "finetune")
    val = voc.VocDetection(root, "test")
    return DataSplits(train, val, int(info.num_classes or 0), info.channels, collate=voc.collate_detection)


#: The loaders a row of the data-set table can name: each reads one on-disk format.
LOADERS: dict[str, Callable[[DataConfig, DatasetInfo], DataSplits]] = {
    "digits": _digits,
    "fashion_mnist": _fashion_mnist,
    "cifar": _cifar,
    "image_folder": _image_folder,
    "torchvision": _torchvision_set,
    "voc": _voc,
}


def build_datasets(config: DataConfig) -> DataSplits:
    """Train and validation data sets for ``config`` (see the module docstring)."""
    info = dataset_info(config.dataset)
    splits = LOADERS[info.loader](config, info)
    splits.train = _limit(splits.train, config.max_train_samples)
    splits.val = _limit(splits.val, config.max_val_samples)
    logger.info("data %s: %d training / %d validation samples", config.dataset, len(splits.train), len(splits.val))
    return splits


__all__ = ["LOADERS", "DataSplits", "build_datasets", "candidate_roots", "resolve_root"]

"""Data sources of the recipes: one function turns ``recipe.data`` into train and validation data sets.

Nothing is downloaded unless ``data.download`` is true. The data root is ``data.root`` (``--data-root`` on the
command line sets it), else ``$TRACT_HUB_DATA``, else ``./data``.

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

from ..recipe import DataConfig
from . import cifar, digits, folders, voc
from .transforms import build_image_transform

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Per data set: (mean, std, default training resolution). CIFAR statistics are those of the paper's code.
_DEFAULTS: dict[str, tuple[tuple[float, ...], tuple[float, ...], int | None]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), None),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), None),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD, 224),
    "image_folder": (IMAGENET_MEAN, IMAGENET_STD, None),
    "flowers102": (IMAGENET_MEAN, IMAGENET_STD, 224),
    "stanford_cars": (IMAGENET_MEAN, IMAGENET_STD, 224),
}


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


def _limit(dataset: Dataset, count: int | None) -> Dataset:
    if count is None or count >= len(dataset):  # type: ignore[arg-type]
        return dataset
    return Subset(dataset, range(count))


def _stats(config: DataConfig, default_mean: tuple[float, ...], default_std: tuple[float, ...]) -> tuple:
    if config.mean is not None and config.std is not None:
        return config.mean, config.std
    return default_mean, default_std


def _digits(config: DataConfig) -> DataSplits:
    split = digits.load_digits_split(config.digits)
    mean, std = _stats(config, (float(split.train_images.mean()),), (float(split.train_images.std()),))

    def prepare(images: torch.Tensor) -> torch.Tensor:
        if config.normalize == "standard":
            return (images - mean[0]) / std[0]
        return images * 255.0 if config.normalize == "raw255" else images

    train = TensorDataset(prepare(split.train_images), split.train_labels)
    val = TensorDataset(prepare(split.test_images), split.test_labels)
    return DataSplits(train, val, digits.NUM_CLASSES, 1)


def _transforms(config: DataConfig, mean: tuple, std: tuple, default_size: int | None) -> tuple[Any, Any]:
    size = config.image_size or default_size
    common = {"normalize": config.normalize, "mean": mean, "std": std}
    train = build_image_transform(
        config.augment, train=True, image_size=size, color_jitter=config.color_jitter, **common
    )
    val = build_image_transform(
        "none", train=False, image_size=config.eval_image_size or size, eval_crop_pct=config.eval_crop_pct, **common
    )
    return train, val


def _cifar(config: DataConfig, root: Path) -> DataSplits:
    name = config.dataset
    if config.download and not cifar.cifar_folder(root, name).is_dir():
        cifar.download_cifar(root, name)
    default_mean, default_std, size = _DEFAULTS[name]
    train_tf, val_tf = _transforms(config, *_stats(config, default_mean, default_std), size)
    train = cifar.CifarDataset(cifar.read_cifar(root, name, train=True), train_tf)
    val = cifar.CifarDataset(cifar.read_cifar(root, name, train=False), val_tf)
    return DataSplits(train, val, cifar.LAYOUTS[name].num_classes, 3)


def _image_folder(config: DataConfig, root: Path) -> DataSplits:
    default_mean, default_std, size = _DEFAULTS[config.dataset]
    train_tf, val_tf = _transforms(config, *_stats(config, default_mean, default_std), size)
    train = folders.image_folder(root, config.train_split, train_tf)
    val = folders.image_folder(root, config.val_split, val_tf)
    folders.check_same_classes(train, val)
    return DataSplits(train, val, len(train.classes), 3)


def _torchvision_set(config: DataConfig, root: Path) -> DataSplits:
    default_mean, default_std, size = _DEFAULTS[config.dataset]
    train_tf, val_tf = _transforms(config, *_stats(config, default_mean, default_std), size)
    common = {"download": config.download}
    train = folders.torchvision_split(config.dataset, root, train=True, transform=train_tf, **common)
    val = folders.torchvision_split(config.dataset, root, train=False, transform=val_tf, **common)
    num_classes = 102 if config.dataset == "flowers102" else 196
    return DataSplits(train, val, num_classes, 3)


def _voc(config: DataConfig, root: Path) -> DataSplits:
    if config.download and not voc.voc_folder(root).is_dir():
        voc.download_voc2007(root)
    train = voc.VocDetection(root, "trainval", flip=config.augment == "finetune")
    val = voc.VocDetection(root, "test")
    return DataSplits(train, val, voc.NUM_DETECTION_CLASSES, 3, collate=voc.collate_detection)


def build_datasets(config: DataConfig) -> DataSplits:
    """Train and validation data sets for ``config`` (see the module docstring)."""
    root = resolve_root(config)
    if config.dataset == "digits":
        splits = _digits(config)
    elif config.dataset in ("cifar10", "cifar100"):
        splits = _cifar(config, root)
    elif config.dataset in ("imagenet", "image_folder"):
        splits = _image_folder(config, root)
    elif config.dataset in ("flowers102", "stanford_cars"):
        splits = _torchvision_set(config, root)
    else:
        splits = _voc(config, root)
    splits.train = _limit(splits.train, config.max_train_samples)
    splits.val = _limit(splits.val, config.max_val_samples)
    logger.info("data %s: %d training / %d validation samples", config.dataset, len(splits.train), len(splits.val))
    return splits


__all__ = ["DataSplits", "build_datasets", "resolve_root"]

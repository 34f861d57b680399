"""Image classification sets read by torchvision: an ImageFolder tree (ImageNet's layout), Flowers-102, Stanford Cars.

ImageFolder layout: ``ROOT/<split>/<class name>/<image>.{jpg,jpeg,png,...}`` with the same class folders in
every split (ImageNet: ``train/n01440764/...JPEG`` and ``val/n01440764/...``, as torchvision's reference
scripts expect).

Example:
    >>> train = image_folder("data/imagenet", "train", transform=None)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchvision import datasets

from ...errors import DataError


def image_folder(root: str | Path, split: str, transform: Any) -> datasets.ImageFolder:
    """``ROOT/<split>`` as a torchvision ImageFolder; a clear DataError when it is missing or empty."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataError(
            f"{folder} is not a directory: an ImageFolder data set needs ROOT/{split}/<class>/<images> "
            "(set data.root in the recipe or --data-root; the split names are data.train_split / data.val_split)"
        )
    try:
        return datasets.ImageFolder(str(folder), transform=transform)
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(f"{folder}: {error}") from None


def check_same_classes(train: datasets.ImageFolder, val: datasets.ImageFolder) -> None:
    """Refuse splits whose class folders differ (the label indices would not match)."""
    if train.classes != val.classes:
        only_train = sorted(set(train.classes) - set(val.classes))[:5]
        only_val = sorted(set(val.classes) - set(train.classes))[:5]
        raise DataError(
            f"{train.root} and {val.root} have different class folders (only in train: {only_train}, "
            f"only in val: {only_val}); the label of a class must be the same in both splits"
        )


def torchvision_split(name: str, root: str | Path, *, train: bool, transform: Any, download: bool) -> Any:
    """Flowers-102 (``flowers102``: train+val for training, test for evaluation, as in transfer-learning papers)
    or Stanford Cars (``stanford_cars``: train / test) from torchvision, with DataError on missing files."""
    try:
        if name == "flowers102":
            if train:
                from torch.utils.data import ConcatDataset

                parts = [
                    datasets.Flowers102(str(root), split=s, transform=transform, download=download)
                    for s in ("train", "val")
                ]
                return ConcatDataset(parts)
            return datasets.Flowers102(str(root), split="test", transform=transform, download=download)
        if name == "stanford_cars":
            return datasets.StanfordCars(
                str(root), split="train" if train else "test", transform=transform, download=False
            )
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        hint = (
            "torchvision can no longer download Stanford Cars; place the files by hand"
            if name == "stanford_cars"
            else "add --set data.download=true to download it"
        )
        raise DataError(f"{name} under {root}: {error} ({hint}; set data.root or --data-root)") from None
    raise DataError(f"unknown torchvision data set {name!r}")

"""The data-set table: one row per data set a recipe can name, and everything that follows from the name.

Recipes (``data.dataset``), the trainer (classes, channels, normalization, default resolution), evaluation,
tasks and metrics (:mod:`.task`), the model cards (the Hub data set id) and the command line's help all read
this table; adding a data set is one row here and, for a new on-disk format, one loader in
:mod:`tract_hub.training.data` (a row names its loader; a test checks that each one exists). The table holds
facts only, so it imports no data library.

Example:
    >>> info = dataset_info("fashion_mnist")
    >>> info.num_classes, info.channels, info.hub_id, info.task.name
    (10, 1, 'zalando-datasets/fashion_mnist', 'classification')
    >>> task_of("voc2007").main_metric, task_of("an unknown name").main_metric
    ('map', 'top1')
    >>> dataset_info("fashoin_mnist")
    Traceback (most recent call last):
    ...
    tract_hub.errors.InvalidArgumentError: data set 'fashoin_mnist' is not known; did you mean 'fashion_mnist'? ...
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import InvalidArgumentError
from .task import CLASSIFICATION, DETECTION, Task

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Where Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST's four idx ``.gz`` files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class DatasetInfo:
    """One data set; see the module docstring."""

    name: str  # what a recipe's data.dataset says
    task: Task
    num_classes: int | None  # None: read from the data (the class folders of an image folder)
    channels: int  # image channels (the model's in_chans)
    mean: tuple[float, ...] | None  # normalization default; None: measured on the training images when loaded
    std: tuple[float, ...] | None
    loader: str  # the loader of tract_hub.training.data that reads it
    hub_id: str | None = None  # the Hugging Face Hub data set (a model card's `datasets`); None: none exists
    image_size: int | None = None  # default training resolution; None: the images' own
    native_size: int | None = None  # the images' own side length, when they all have one (a crop keeps it)
    needs_size: bool = False  # images of many sizes that the recipe resizes to one (image_size or data.image_size)
    transforms: bool = True  # PIL images through data.augment / data.normalize (digits: tensors, made once)
    section: str | None = None  # the recipe's data sub-section that configures this data set only
    default_root: str | None = None  # where the files are when no data root is given (a system package)
    install_hint: str = ""  # how to get the files, for the error when they are missing

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None) or (self.mean is not None and len(self.mean) != self.channels):
            raise InvalidArgumentError(f"data set {self.name!r}: mean and std need one value per channel")


_FASHION_INSTALL = (
    f"install Debian's package (`sudo apt-get install dataset-fashion-mnist`, files in {DEBIAN_FASHION_MNIST}), "
    "point --data-root (data.root) at a folder that holds the four idx files, or let torchvision download them "
    "with --set data.download=true"
)

#: The table (see the module docstring). CIFAR statistics are those of the paper's code; Fashion-MNIST's are
#: measured on its 60,000 training images; the Hub ids were looked up on huggingface.co.
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("digits", CLASSIFICATION, 10, 1, None, None, "digits", transforms=False, section="digits"),
        DatasetInfo(
            "fashion_mnist", CLASSIFICATION, 10, 1, (0.2860,), (0.3530,), "fashion_mnist",
            hub_id="zalando-datasets/fashion_mnist", native_size=28, default_root=DEBIAN_FASHION_MNIST,
            install_hint=_FASHION_INSTALL,
        ),
        DatasetInfo(
            "cifar10", CLASSIFICATION, 10, 3, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "cifar",
            hub_id="uoft-cs/cifar10", native_size=32,
        ),
        DatasetInfo(
            "cifar100", CLASSIFICATION, 100, 3, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "cifar",
            hub_id="uoft-cs/cifar100", native_size=32,
        ),
        DatasetInfo(
            "imagenet", CLASSIFICATION, 1000, 3, IMAGENET_MEAN, IMAGENET_STD, "image_folder",
            hub_id="ILSVRC/imagenet-1k", image_size=224, needs_size=True,
        ),
        DatasetInfo(
            "image_folder", CLASSIFICATION, None, 3, IMAGENET_MEAN, IMAGENET_STD, "image_folder",
            needs_size=True,
        ),
        DatasetInfo(
            "flowers102", CLASSIFICATION, 102, 3, IMAGENET_MEAN, IMAGENET_STD, "torchvision",
            hub_id="nelorth/oxford-flowers", image_size=224, needs_size=True,
        ),
        DatasetInfo(
            "stanford_cars", CLASSIFICATION, 196, 3, IMAGENET_MEAN, IMAGENET_STD, "torchvision",
            hub_id="tanganke/stanford_cars", image_size=224, needs_size=True,
        ),
        DatasetInfo(
            "voc2007", DETECTION, 21, 3, IMAGENET_MEAN, IMAGENET_STD, "voc", hub_id="HuggingFaceM4/pascal_voc",
            transforms=False,  # Faster R-CNN resizes each image itself (model.detection.min_size / max_size)
        ),
    )
}  # fmt: skip


def dataset_names() -> tuple[str, ...]:
    """The data sets a recipe can name, in the table's order."""
    return tuple(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The row of ``name``; :class:`~tract_hub.errors.InvalidArgumentError` naming the closest names otherwise."""
    info = DATASETS.get(name) if isinstance(name, str) else None
    if info is not None:
        return info
    close = difflib.get_close_matches(str(name), list(DATASETS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise InvalidArgumentError(f"data set {name!r} is not known; {hint}the data sets are {', '.join(DATASETS)}")


def hub_dataset(name: str) -> str:
    """The Hub data set id of a recipe's data set, or the name itself when the Hub has none (or the table does
    not know the name)."""
    info = DATASETS.get(name)
    return (info.hub_id if info is not None else None) or name


def task_of(dataset: str | None) -> Task:
    """The task of a recipe's ``data.dataset`` (classification for a name the table does not know, such as a
    data set recorded by another version of tract_hub)."""
    info = DATASETS.get(dataset or "")
    return info.task if info is not None else CLASSIFICATION

"""Fashion-MNIST (Zalando: 60,000 training and 10,000 test images, 28x28 grayscale, 10 classes), read by
torchvision's own ``FashionMNIST`` class.

Where the files are, first found wins:

* ``DIR/FashionMNIST/raw/`` with the four decompressed idx files: torchvision's own layout, as its download
  leaves it; read in place;
* ``DIR`` (or ``DIR/FashionMNIST/raw/``) with the four idx files gzipped (``train-images-idx3-ubyte.gz``, ...):
  the layout of Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``) and of the
  official release. torchvision reads only decompressed files from its own layout, so they are decompressed by
  torchvision's ``extract_archive`` into a temporary folder in that layout, read by ``FashionMNIST`` into
  memory, and the folder is removed (about a second; nothing is written next to the data, which may be
  read-only, nor kept anywhere).

``DIR`` is ``data.root`` (``--data-root``); without one, ``$TRACT_HUB_DATA`` and then Debian's folder are tried.
torchvision's checksums are not applied to the gzipped files: Debian recompressed them (their ``.gz`` MD5 sums
differ from the release's), so the check is on what they hold instead: 28x28 images, as many labels as images,
labels 0 to 9. ``data.download=true`` lets torchvision download the release into ``DIR/FashionMNIST/raw/``
(which checks its MD5 sums). Nothing here touches the network otherwise.

Example:
    >>> FILES[0], holds_files("/nonexistent")
    ('train-images-idx3-ubyte', False)
    >>> splits = read_fashion_mnist("/usr/share/datasets/fashion-mnist")  # doctest: +SKIP
    >>> len(splits.train), len(splits.test), splits.train.classes[0]  # doctest: +SKIP
    (60000, 10000, 'T-shirt/top')
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchvision import datasets
from torchvision.datasets.utils import extract_archive

from ...artifacts.datasets import dataset_info
from ...errors import DataError

logger = logging.getLogger(__name__)

#: The four idx files, as torchvision's FashionMNIST names them (decompressed).
FILES = tuple(Path(name).stem for name, _ in datasets.FashionMNIST.resources)
IMAGE_SIZE = 28


@dataclass
class FashionMnistSplits:
    """The training and test splits as torchvision ``FashionMNIST`` data sets (PIL images, integer labels)."""

    train: datasets.FashionMNIST
    test: datasets.FashionMNIST


def _torchvision_layout(root: Path) -> bool:
    raw = root / datasets.FashionMNIST.__name__ / "raw"
    return all((raw / name).is_file() for name in FILES)


def _gzipped(root: Path) -> dict[str, Path] | None:
    """The four ``.gz`` files in ``root`` or in its torchvision layout, or None if any is missing."""
    for folder in (root, root / datasets.FashionMNIST.__name__ / "raw"):
        found = {name: folder / f"{name}.gz" for name in FILES}
        if all(path.is_file() for path in found.values()):
            return found
    return None


def holds_files(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` holds Fashion-MNIST in a layout this module reads (see the module docstring)."""
    root = Path(root)
    return _torchvision_layout(root) or _gzipped(root) is not None


def _check(split: datasets.FashionMNIST, where: Path) -> datasets.FashionMNIST:
    images, labels = split.data, split.targets
    if images.dim() != 3 or tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{where}: Fashion-MNIST images are 28x28, these are {tuple(images.shape[1:])}")
    if len(labels) != len(images):
        raise DataError(f"{where}: {len(labels)} labels for {len(images)} images")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(split.classes)):
        raise DataError(f"{where}: labels outside 0..{len(split.classes) - 1}")
    return split


def _read(root: Path, where: Path, **options: Any) -> FashionMnistSplits:
    try:
        train = datasets.FashionMNIST(str(root), train=True, **options)
        test = datasets.FashionMNIST(str(root), train=False, **options)
    except (AssertionError, TypeError, ValueError, RuntimeError, OSError, EOFError) as error:
        raise DataError(
            f"{where} does not hold readable Fashion-MNIST idx files ({type(error).__name__}: {error}); reinstall them"
        ) from None
    return FashionMnistSplits(_check(train, where), _check(test, where))


def read_fashion_mnist(root: str | os.PathLike[str]) -> FashionMnistSplits:
    """Both splits from ``root`` in either layout of the module docstring; :class:`DataError` naming how to get
    the files when they are not there."""
    root = Path(root)
    if _torchvision_layout(root):
        return _read(root, root)
    gzipped = _gzipped(root)
    if gzipped is None:
        raise DataError(missing_message([root]))
    with tempfile.TemporaryDirectory(prefix="tract-hub-fashion-mnist-") as temporary:
        raw = Path(temporary) / datasets.FashionMNIST.__name__ / "raw"
        raw.mkdir(parents=True)
        for path in gzipped.values():
            try:
                extract_archive(str(path), str(raw))
            except (OSError, EOFError) as error:
                raise DataError(f"{path} is not a readable gzip file ({error}); reinstall the files") from None
        logger.info("read Fashion-MNIST from %s", gzipped[FILES[0]].parent)
        return _read(Path(temporary), root)


def missing_message(tried: list[Path]) -> str:
    """The error for files found nowhere: where it looked and how to get them."""
    names = ", ".join(f"{name}.gz" for name in FILES)
    places = " or ".join(str(path) for path in tried)
    return f"fashion_mnist: no Fashion-MNIST files ({names}) in {places}; {dataset_info('fashion_mnist').install_hint}"


def download(root: str | os.PathLike[str]) -> None:
    """torchvision's download of the release into ``root/FashionMNIST/raw`` (it checks the MD5 sums)."""
    logger.info("downloading Fashion-MNIST to %s", root)
    try:
        datasets.FashionMNIST(str(root), train=True, download=True)
    except (RuntimeError, OSError) as error:
        raise DataError(f"downloading Fashion-MNIST to {root} failed ({error}); check the network") from None

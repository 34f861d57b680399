"""CIFAR-10 / CIFAR-100 in their "python version" on-disk format, read without unpickling arbitrary code.

The format (https://www.cs.toronto.edu/~kriz/cifar.html): ``cifar-10-batches-py/`` holds ``data_batch_1`` ..
``data_batch_5``, ``test_batch`` and ``batches.meta``; ``cifar-100-python/`` holds ``train``, ``test`` and
``meta``. Each file is a pickled dict with ``data`` (N x 3072 uint8, channel-major 32x32 images) and ``labels``
(CIFAR-10) or ``fine_labels`` (CIFAR-100); the meta file names the classes.

torchvision's ``CIFAR10`` reads the same files but first checks each file's MD5 sum against the official
release, and unpickles with the full ``pickle`` module. This reader instead unpickles with an allow-list (plain
containers, strings, numbers and numpy arrays; anything else is refused) and checks the structure: every
expected file is present, shapes and label ranges are right. The official files pass; so do small files in the
same format (the tests make them). ``download=True`` fetches the archive through torchvision, which verifies
the MD5 sum of what it downloads.

Example:
    >>> arrays = read_cifar("data", "cifar10", train=True)  # doctest: +SKIP
    >>> arrays.images.shape  # doctest: +SKIP
    (50000, 32, 32, 3)
"""

from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ...errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int


LAYOUTS = {
    "cifar10": CifarLayout(
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
        num_classes=10,
    ),
    "cifar100": CifarLayout(
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        num_classes=100,
    ),
}

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _AllowListUnpickler(pickle.Unpickler):
    """Unpickles containers, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch file")


def _text(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


def load_batch_file(path: Path) -> dict[str, Any]:
    """One CIFAR batch/meta file as a dict with ``str`` keys (safe unpickling; see the module docstring)."""
    try:
        with open(path, "rb") as handle:
            content = _AllowListUnpickler(io.BytesIO(handle.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path} is not a CIFAR python batch file ({error})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path} is not a CIFAR python batch file (a {type(content).__name__}, not a dict)")
    return {_text(key): value for key, value in content.items()}


@dataclass(frozen=True)
class CifarArrays:
    """Images (N x 32 x 32 x 3 uint8), labels (N int64) and class names of one split."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]


def cifar_folder(root: str | Path, name: str) -> Path:
    return Path(root) / LAYOUTS[name].folder


def _missing_message(folder: Path, missing: list[str], name: str) -> str:
    return (
        f"{name}: {folder} lacks {', '.join(missing)}. Put the extracted 'python version' archive under the data "
        f"root (set data.root in the recipe or --data-root), or let torchvision download it with "
        f"--set data.download=true"
    )


def read_cifar(root: str | Path, name: str, *, train: bool) -> CifarArrays:
    """Read one split of CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``) from ``root``."""
    layout = LAYOUTS[name]
    folder = cifar_folder(root, name)
    files = layout.train_files if train else layout.test_files
    missing = [f for f in (*files, layout.meta_file) if not (folder / f).is_file()]
    if missing:
        raise DataError(_missing_message(folder, missing, name))
    images, labels = [], []
    for file in files:
        batch = load_batch_file(folder / file)
        if "data" not in batch or layout.label_key not in batch:
            raise DataError(f"{folder / file} has no 'data' and {layout.label_key!r} entries ({sorted(batch)})")
        data = np.asarray(batch["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{folder / file}: 'data' is {data.dtype} {data.shape}, expected uint8 N x 3072")
        file_labels = np.asarray(batch[layout.label_key], dtype=np.int64)
        if file_labels.shape != (len(data),):
            raise DataError(f"{folder / file}: {len(file_labels)} labels for {len(data)} images")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(file_labels)
    all_labels = np.concatenate(labels)
    if all_labels.size and (all_labels.min() < 0 or all_labels.max() >= layout.num_classes):
        raise DataError(f"{folder}: labels outside 0..{layout.num_classes - 1}")
    meta = load_batch_file(folder / layout.meta_file)
    classes = tuple(_text(c) for c in meta.get(layout.names_key, ()))
    if len(classes) != layout.num_classes:
        raise DataError(
            f"{folder / layout.meta_file}: {len(classes)} class names under {layout.names_key!r}, "
            f"expected {layout.num_classes}"
        )
    return CifarArrays(np.ascontiguousarray(np.concatenate(images)), all_labels, classes)


def download_cifar(root: str | Path, name: str) -> None:
    """Fetch and extract the official archive with torchvision (which checks its MD5 sum)."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    logger.info("downloading %s to %s", name, root)
    cls(str(root), train=True, download=True)


class CifarDataset(torch.utils.data.Dataset):
    """A CIFAR split as PIL images through ``transform``, with integer labels."""

    def __init__(self, arrays: CifarArrays, transform: Any = None) -> None:
        self.arrays = arrays
        self.transform = transform
        self.classes = list(arrays.classes)

    def __len__(self) -> int:
        return len(self.arrays.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.arrays.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.arrays.labels[index])

"""CIFAR-10/100 in the python on-disk format: read by the product's reader, which refuses foreign pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tract_hub.errors import DataError
from tract_hub.training.data import build_datasets
from tract_hub.training.data.cifar import LAYOUTS, read_cifar
from tract_hub.training.recipe import DataConfig

from .builders import write_tiny_cifar


@pytest.mark.parametrize(("name", "classes"), [("cifar10", 10), ("cifar100", 100)])
def test_reads_the_files_it_wrote(tmp_path: Path, name: str, classes: int) -> None:
    write_tiny_cifar(tmp_path, name, train=15, test=6)
    train = read_cifar(tmp_path, name, train=True)
    test = read_cifar(tmp_path, name, train=False)
    assert train.images.shape == (15, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.labels.shape == (6,) and len(train.classes) == classes
    splits = build_datasets(DataConfig(dataset=name, root=str(tmp_path), augment="cifar"))
    image, label = splits.train[0]
    assert tuple(image.shape) == (3, 32, 32) and 0 <= label < classes
    assert splits.num_classes == classes and len(splits.val) == 6


def test_reads_python2_style_batches_with_bytes_keys(tmp_path: Path) -> None:
    """The official files were pickled by Python 2; their keys arrive as bytes or latin-1 strings."""
    folder = tmp_path / LAYOUTS["cifar10"].folder
    folder.mkdir()
    rng = np.random.default_rng(1)
    for file in (*LAYOUTS["cifar10"].train_files, "test_batch"):
        batch = {b"batch_label": b"x", b"labels": [1, 2], b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8)}
        (folder / file).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}, protocol=2))
    arrays = read_cifar(tmp_path, "cifar10", train=True)
    assert arrays.images.shape == (10, 32, 32, 3) and arrays.classes[3] == "c3"


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_refuses_a_pickle_that_would_run_code(cifar10_root: Path) -> None:
    (cifar10_root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": _Evil()}))
    with pytest.raises(DataError, match=r"global (posix|os|nt)\.system is not allowed"):
        read_cifar(cifar10_root, "cifar10", train=False)


def test_missing_files_are_named(cifar10_root: Path) -> None:
    (cifar10_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"lacks data_batch_3.*data\.download=true"):
        read_cifar(cifar10_root, "cifar10", train=True)


def test_wrong_shapes_are_refused(cifar10_root: Path) -> None:
    path = cifar10_root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataError, match="expected uint8 N x 3072"):
        read_cifar(cifar10_root, "cifar10", train=False)

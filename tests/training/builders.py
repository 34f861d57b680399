"""Small data sets in their real on-disk formats, and quick recipes, for the training tests."""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tract_hub.training.data.cifar import LAYOUTS, CifarArrays, cifar_folder
from tract_hub.training.demo_recipe import demo_recipe
from tract_hub.training.recipe import Recipe

#: The demo recipe made small enough to train in a fraction of a second per epoch on a CPU: 8x8 digits, a ResNet-8
#: of width 4, 256 training images in 4 steps of 64, 128 test images.
QUICK = (
    "data.digits.size=8",
    "model.kwargs.width=4",
    "data.max_train_samples=256",
    "data.max_val_samples=128",
    "train.batch_size=64",
)


def quick_recipe(*overrides: str) -> Recipe:
    return demo_recipe([*QUICK, *overrides])


def write_cifar(root: str | Path, name: str, train: CifarArrays, test: CifarArrays) -> Path:
    """Write arrays in CIFAR's official on-disk format (pickled batches, as released); returns the folder."""
    layout = LAYOUTS[name]
    folder = cifar_folder(root, name)
    folder.mkdir(parents=True, exist_ok=True)

    def dump(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
        data = images.transpose(0, 3, 1, 2).reshape(len(images), -1).astype(np.uint8)
        with open(path, "wb") as handle:
            pickle.dump({"data": data, layout.label_key: [int(v) for v in labels]}, handle)

    parts = np.array_split(np.arange(len(train.labels)), len(layout.train_files))
    for file, index in zip(layout.train_files, parts, strict=True):
        dump(folder / file, train.images[index], train.labels[index])
    dump(folder / layout.test_files[0], test.images, test.labels)
    with open(folder / layout.meta_file, "wb") as handle:
        pickle.dump({layout.names_key: list(train.classes)}, handle)
    return folder


def write_tiny_cifar(root: Path, name: str, *, train: int, test: int, seed: int = 0) -> Path:
    """Random images in the CIFAR python format (``cifar-10-batches-py/`` or ``cifar-100-python/``)."""
    classes = 10 if name == "cifar10" else 100
    rng = np.random.default_rng(seed)

    def arrays(count: int) -> CifarArrays:
        images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, classes, size=count)
        return CifarArrays(images, labels, tuple(f"class{i}" for i in range(classes)))

    return write_cifar(root, name, arrays(train), arrays(test))


def write_image_folder(
    root: Path, *, classes: Sequence[str], per_class: int, splits: Sequence[str] = ("train", "val")
) -> Path:
    """``root/<split>/<class>/<n>.{png,jpg}`` with random RGB images of varying sizes, PNG and JPEG mixed."""
    rng = np.random.default_rng(0)
    for split in splits:
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                size = (int(rng.integers(20, 40)), int(rng.integers(20, 40)))
                pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                suffix = "png" if index % 2 == 0 else "jpg"
                Image.fromarray(pixels).save(folder / f"{index}.{suffix}")
    return root


VOC_OBJECT = """  <object>
    <name>{name}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>{difficult}</difficult>
    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>
  </object>
"""


def write_tiny_voc(root: Path) -> Path:
    """``root/VOCdevkit/VOC2007`` with four 64x48 JPEGs, XML annotations and trainval/test lists."""
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    objects = {
        "000001": [("dog", 0, (5, 6, 30, 40))],
        "000002": [("cat", 0, (10, 5, 50, 30)), ("person", 1, (2, 2, 12, 20))],
        "000003": [("car", 0, (20, 10, 60, 44))],
        "000004": [("dog", 0, (30, 8, 62, 46))],
    }
    rng = np.random.default_rng(0)
    for image_id, items in objects.items():
        pixels = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(base / "JPEGImages" / f"{image_id}.jpg")
        body = "".join(
            VOC_OBJECT.format(name=name, difficult=difficult, x1=x1, y1=y1, x2=x2, y2=y2)
            for name, difficult, (x1, y1, x2, y2) in items
        )
        xml = (
            f"<annotation>\n  <folder>VOC2007</folder>\n  <filename>{image_id}.jpg</filename>\n"
            f"  <size><width>64</width><height>48</height><depth>3</depth></size>\n{body}</annotation>\n"
        )
        (base / "Annotations" / f"{image_id}.xml").write_text(xml)
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000002\n000003\n")
    (base / "ImageSets" / "Main" / "test.txt").write_text("000004\n000002\n")
    return root


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in the idx format of MNIST and Fashion-MNIST: magic 0x0000 08 <dims>, big-endian sizes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_tiny_fashion_mnist(
    folder: Path, *, train: int = 40, test: int = 20, layout: str = "debian", classes: int = 10, seed: int = 0
) -> Path:
    """Fashion-MNIST's four idx files with ``train`` / ``test`` images in one of the layouts the loader reads:
    ``debian`` (the ``.gz`` files in ``folder``), ``torchvision`` (decompressed, ``folder/FashionMNIST/raw``) or
    ``torchvision_gz`` (gzipped there). Labels cycle through ``classes`` classes."""
    rng = np.random.default_rng(seed)
    raw = folder if layout == "debian" else folder / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % classes).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data, name = idx_bytes(array), f"{split}-{kind}-ubyte"
            if layout == "torchvision":
                (raw / name).write_bytes(data)
            else:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
    return folder

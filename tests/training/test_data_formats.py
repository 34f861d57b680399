"""ImageFolder trees (PNG and JPEG), VOC XML with JPEGs, and the digits set, as the trainer reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tract_hub.artifacts.datasets import task_of
from tract_hub.artifacts.task import DETECTION
from tract_hub.errors import DataError
from tract_hub.training.data import build_datasets
from tract_hub.training.data.digits import corrupt, load_digits_split
from tract_hub.training.data.voc import NUM_DETECTION_CLASSES, VocDetection, parse_annotation
from tract_hub.training.recipe import DataConfig, DigitsConfig

from .builders import write_image_folder


@pytest.mark.parametrize("augment", ["none", "imagenet", "deit3", "finetune"])
def test_image_folder_batches_at_one_size(image_folder_root: Path, augment: str) -> None:
    config = DataConfig(dataset="image_folder", root=str(image_folder_root), image_size=24, augment=augment)
    splits = build_datasets(config)
    assert splits.num_classes == 3 and len(splits.train) == 9 and len(splits.val) == 9
    batch = torch.stack([splits.train[i][0] for i in range(4)] + [splits.val[i][0] for i in range(4)])
    assert batch.shape == (8, 3, 24, 24)


def test_image_folder_splits_must_have_the_same_classes(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path, classes=("cat", "dog"), per_class=1, splits=("train",))
    write_image_folder(tmp_path, classes=("cat", "eel"), per_class=1, splits=("val",))
    with pytest.raises(DataError, match="different class folders"):
        build_datasets(DataConfig(dataset="image_folder", root=str(root), image_size=16))


def test_missing_image_folder_split_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train is not a directory.*--data-root"):
        build_datasets(DataConfig(dataset="imagenet", root=str(tmp_path)))


@pytest.mark.parametrize(
    ("normalize", "low", "high"), [("unit", 0.0, 1.0), ("raw255", 0.0, 255.0), ("standard", -5.0, 5.0)]
)
def test_normalization_choices(image_folder_root: Path, normalize: str, low: float, high: float) -> None:
    config = DataConfig(dataset="image_folder", root=str(image_folder_root), image_size=16, normalize=normalize)
    image = build_datasets(config).val[0][0]
    assert low <= float(image.min()) and float(image.max()) <= high
    if normalize == "raw255":
        assert float(image.max()) > 1.0


def test_voc_annotations_and_images(voc_root: Path) -> None:
    splits = build_datasets(DataConfig(dataset="voc2007", root=str(voc_root)))
    assert task_of("voc2007") is DETECTION and splits.num_classes == NUM_DETECTION_CLASSES == 21
    image, target = splits.val[1]  # 000002: a cat and a difficult person
    assert image.shape == (3, 48, 64) and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert target["labels"].tolist() == [8, 15]
    assert target["difficult"].tolist() == [False, True]
    assert target["boxes"][0].tolist() == [9.0, 4.0, 49.0, 29.0]  # VOC is 1-based; boxes are 0-based


def test_voc_flip_mirrors_boxes(voc_root: Path) -> None:
    data = VocDetection(voc_root, "trainval", flip=True)
    torch.manual_seed(0)
    flips = [data[0][1]["boxes"][0].tolist() for _ in range(8)]
    assert [4.0, 5.0, 29.0, 39.0] in flips and [34.0, 5.0, 59.0, 39.0] in flips  # width 64: x -> 63 - x


def test_voc_errors(voc_root: Path) -> None:
    base = voc_root / "VOCdevkit" / "VOC2007"
    (base / "Annotations" / "000003.xml").write_text("<annotation><object><name>unicorn</name></object></annotation>")
    with pytest.raises(DataError, match="'unicorn' is not a VOC class"):
        parse_annotation(base / "Annotations" / "000003.xml")
    (base / "ImageSets" / "Main" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"test\.txt is missing"):
        VocDetection(voc_root, "test")


def test_digits_corruption_is_fixed_and_within_range() -> None:
    config = DigitsConfig(size=16, contrast=(0.1, 1.0))
    first, second = load_digits_split(config), load_digits_split(config)
    assert torch.equal(first.train_images, second.train_images)
    assert first.train_images.shape == (1347, 1, 16, 16) and first.test_images.shape == (450, 1, 16, 16)
    assert float(first.train_images.min()) >= 0.0 and float(first.train_images.max()) <= 1.0 + 1e-6
    ranges = (first.train_images.amax((1, 2, 3)) - first.train_images.amin((1, 2, 3))).numpy()
    assert ranges.min() < 0.2 and ranges.max() > 0.8  # contrasts spread over 0.1..1


def test_corrupt_applies_contrast_and_offset_per_image() -> None:
    images = torch.ones(500, 1, 2, 2)
    images[:, :, 0, 0] = 0.0
    out = corrupt(images, (0.1, 1.0), brightness=True, seed=3)
    contrast = out[:, 0, 1, 1] - out[:, 0, 0, 0]
    assert float(contrast.min()) >= 0.1 - 1e-6 and float(contrast.max()) <= 1.0 + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 + 1e-6
    assert torch.log(contrast).std() > 0.5  # log-uniform over a decade: std ln(10)/sqrt(12) = 0.66


def test_digits_data_set_standardized() -> None:
    splits = build_datasets(DataConfig(dataset="digits"))
    images = splits.train.tensors[0]
    assert abs(float(images.mean())) < 1e-4 and abs(float(images.std()) - 1.0) < 1e-4
    assert splits.in_chans == 1 and splits.num_classes == 10

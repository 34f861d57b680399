"""PASCAL VOC 2007 detection in its own on-disk layout, as Faster R-CNN targets.

Layout (what ``VOCtrainval_06-Nov-2007.tar`` and ``VOCtest_06-Nov-2007.tar`` extract to)::

    ROOT/VOCdevkit/VOC2007/Annotations/<id>.xml
    ROOT/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    ROOT/VOCdevkit/VOC2007/ImageSets/Main/{trainval,test}.txt

Objects marked ``difficult`` are kept in the targets (flagged) so the mAP can ignore them, as the VOC protocol
does; they are not used as training boxes.

Example:
    >>> data = VocDetection("data", "trainval")  # doctest: +SKIP
    >>> image, target = data[0]  # doctest: +SKIP
    >>> sorted(target)  # doctest: +SKIP
    ['boxes', 'difficult', 'image_id', 'labels']
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import functional as TF

from ...errors import DataError

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
#: Faster R-CNN's class count: the 20 VOC classes and the background (label 0).
NUM_DETECTION_CLASSES = len(VOC_CLASSES) + 1


def voc_folder(root: str | Path) -> Path:
    return Path(root) / "VOCdevkit" / "VOC2007"


def parse_annotation(path: Path) -> dict[str, Any]:
    """Boxes (x1, y1, x2, y2, 0-based pixels), labels (1..20) and difficult flags of one annotation file."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as error:
        raise DataError(f"{path} is not a VOC annotation ({error})") from None
    boxes, labels, difficult = [], [], []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise DataError(f"{path}: object class {name!r} is not a VOC class")
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{path}: object {name!r} has no bndbox")
        try:
            x1, y1, x2, y2 = (float(box.findtext(k) or "nan") - 1.0 for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            raise DataError(f"{path}: object {name!r} has a malformed bndbox") from None
        boxes.append([x1, y1, x2, y2])
        labels.append(VOC_CLASSES.index(name) + 1)
        difficult.append(int(obj.findtext("difficult") or 0) == 1)
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "difficult": torch.tensor(difficult, dtype=torch.bool),
    }


class VocDetection(torch.utils.data.Dataset):
    """One image set of VOC2007 as ``(image tensor in [0, 1], target dict)`` pairs.

    ``flip=True`` mirrors images and boxes at random (training augmentation).
    """

    def __init__(self, root: str | Path, image_set: str, *, flip: bool = False) -> None:
        self.folder = voc_folder(root)
        listing = self.folder / "ImageSets" / "Main" / f"{image_set}.txt"
        if not listing.is_file():
            raise DataError(
                f"{listing} is missing: VOC2007 must be extracted under ROOT/VOCdevkit/VOC2007 (set data.root or "
                "--data-root; --set data.download=true downloads it with torchvision)"
            )
        self.ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise DataError(f"{listing} lists no images")
        self.flip = flip
        missing = [i for i in self.ids if not (self.folder / "Annotations" / f"{i}.xml").is_file()]
        if missing:
            raise DataError(
                f"{self.folder / 'Annotations'} lacks {len(missing)} files listed in {listing}: {missing[:3]}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        image_id = self.ids[index]
        path = self.folder / "JPEGImages" / f"{image_id}.jpg"
        try:
            image = TF.to_tensor(Image.open(path).convert("RGB"))
        except OSError as error:
            raise DataError(f"{path}: {error}") from None
        target = parse_annotation(self.folder / "Annotations" / f"{image_id}.xml")
        target["image_id"] = index
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(-1)
            width = image.shape[-1]
            boxes = target["boxes"].clone()
            boxes[:, [0, 2]] = width - 1 - target["boxes"][:, [2, 0]]
            target["boxes"] = boxes
        return image, target


def download_voc2007(root: str | Path) -> None:
    """Fetch and extract VOC2007 trainval and test with torchvision (MD5-checked)."""
    from torchvision import datasets

    datasets.VOCDetection(str(root), year="2007", image_set="trainval", download=True)
    datasets.VOCDetection(str(root), year="2007", image_set="test", download=True)


def collate_detection(batch: list[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Images and targets as lists (images differ in size)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)

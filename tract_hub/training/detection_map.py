"""PASCAL VOC mean average precision (IoU 0.5), with VOC2007's 11-point interpolation or the exact area.

This follows the official VOC devkit: detections of a class are sorted by score over the whole test set; a
detection is a true positive when its IoU with a not-yet-matched ground-truth box of the same image and class
is at least 0.5; ground-truth boxes marked ``difficult`` neither count as positives nor penalize a detection
that matches them. Boxes are in pixel coordinates ``(x1, y1, x2, y2)``, and areas use the devkit's ``+1``
convention (inclusive pixel indices). ``"voc07"`` averages the precision at recalls 0, 0.1, ..., 1 (the metric
reported for VOC2007, and by the paper's Faster R-CNN numbers); ``"area"`` integrates the precision envelope
(VOC2010 and later).

Example:
    >>> import torch
    >>> gt = [{"boxes": torch.tensor([[0., 0., 9., 9.]]), "labels": torch.tensor([1]),
    ...        "difficult": torch.tensor([False])}]
    >>> det = [{"boxes": torch.tensor([[0., 0., 9., 9.]]), "labels": torch.tensor([1]), "scores": torch.tensor([0.9])}]
    >>> voc_map(det, gt, num_classes=2)["map"]
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(boxes[:, 0], box[0])
    y1 = np.maximum(boxes[:, 1], box[1])
    x2 = np.minimum(boxes[:, 2], box[2])
    y2 = np.minimum(boxes[:, 3], box[3])
    inter = np.clip(x2 - x1 + 1.0, 0, None) * np.clip(y2 - y1 + 1.0, 0, None)
    area = (box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0)
    areas = (boxes[:, 2] - boxes[:, 0] + 1.0) * (boxes[:, 3] - boxes[:, 1] + 1.0)
    return inter / (area + areas - inter)


def average_precision(recall: np.ndarray, precision: np.ndarray, method: str = "voc07") -> float:
    """AP from a precision/recall curve: ``"voc07"`` 11-point or ``"area"``."""
    if method == "voc07":
        points = []
        for threshold in np.linspace(0.0, 1.0, 11):
            above = precision[recall >= threshold]
            points.append(above.max() if above.size else 0.0)
        return float(np.mean(points))
    if method != "area":
        raise ValueError(f"method={method!r} is not 'voc07' or 'area'")
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _arrays(entries: Sequence[dict[str, Any]], third: str) -> list[dict[str, np.ndarray]]:
    """Boxes, labels and ``third`` (``"scores"`` of detections, ``"difficult"`` of ground truth) as numpy."""
    arrays = []
    for entry in entries:
        if third == "difficult":
            value = _numpy(entry.get("difficult", np.zeros(len(entry["labels"]), bool))).astype(bool)
        else:
            value = _numpy(entry[third]).astype(np.float64)
        boxes = _numpy(entry["boxes"]).reshape(-1, 4).astype(np.float64)
        arrays.append({"boxes": boxes, "labels": _numpy(entry["labels"]).astype(np.int64), third: value})
    return arrays


def _label_ap(
    found: list[dict[str, np.ndarray]], truth: list[dict[str, np.ndarray]], label: int, iou: float, method: str
) -> float | None:
    """The AP of one label (None when no image has a non-difficult ground-truth box of it)."""
    positives = sum(int(np.sum((t["labels"] == label) & ~t["difficult"])) for t in truth)
    if positives == 0:
        return None
    entries = [
        (score, image, box)
        for image, d in enumerate(found)
        for score, box in zip(d["scores"][d["labels"] == label], d["boxes"][d["labels"] == label], strict=True)
    ]
    entries.sort(key=lambda entry: -entry[0])
    matched = [np.zeros(int(np.sum(t["labels"] == label)), dtype=bool) for t in truth]
    tp, fp = np.zeros(len(entries)), np.zeros(len(entries))
    for index, (_, image, box) in enumerate(entries):
        mask = truth[image]["labels"] == label
        gt_boxes, gt_difficult = truth[image]["boxes"][mask], truth[image]["difficult"][mask]
        if len(gt_boxes) == 0:
            fp[index] = 1
            continue
        overlaps = _iou(box, gt_boxes)
        best = int(np.argmax(overlaps))
        if overlaps[best] < iou:
            fp[index] = 1
        elif gt_difficult[best]:
            continue  # neither a true nor a false positive
        elif not matched[image][best]:
            matched[image][best] = True
            tp[index] = 1
        else:
            fp[index] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return average_precision(tp / positives, precision, method)


def voc_map(
    detections: Sequence[dict[str, Any]],
    ground_truth: Sequence[dict[str, Any]],
    num_classes: int,
    *,
    iou_threshold: float = 0.5,
    method: str = "voc07",
) -> dict[str, Any]:
    """``{"map": float, "ap": {label: AP}}`` over labels 1..num_classes-1 (0 is the background).

    ``detections[i]`` (boxes, labels, scores) and ``ground_truth[i]`` (boxes, labels, difficult) are the same
    image. Classes without any non-difficult ground-truth box are left out of the mean.
    """
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection entries for {len(ground_truth)} images")
    found, truth = _arrays(detections, "scores"), _arrays(ground_truth, "difficult")
    aps = {
        label: ap
        for label in range(1, num_classes)
        if (ap := _label_ap(found, truth, label, iou_threshold, method)) is not None
    }
    return {"map": float(np.mean(list(aps.values()))) if aps else 0.0, "ap": aps}

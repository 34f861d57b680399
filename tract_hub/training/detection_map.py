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
    truth = [
        {
            "boxes": _numpy(t["boxes"]).reshape(-1, 4).astype(np.float64),
            "labels": _numpy(t["labels"]).astype(np.int64),
            "difficult": _numpy(t.get("difficult", np.zeros(len(t["labels"]), bool))).astype(bool),
        }
        for t in ground_truth
    ]
    found = [
        {
            "boxes": _numpy(d["boxes"]).reshape(-1, 4).astype(np.float64),
            "labels": _numpy(d["labels"]).astype(np.int64),
            "scores": _numpy(d["scores"]).astype(np.float64),
        }
        for d in detections
    ]
    aps: dict[int, float] = {}
    for label in range(1, num_classes):
        positives = sum(int(np.sum((t["labels"] == label) & ~t["difficult"])) for t in truth)
        if positives == 0:
            continue
        entries = [
            (score, image, box)
            for image, d in enumerate(found)
            for score, box in zip(d["scores"][d["labels"] == label], d["boxes"][d["labels"] == label], strict=True)
        ]
        entries.sort(key=lambda entry: -entry[0])
        matched = [np.zeros(int(np.sum(t["labels"] == label)), dtype=bool) for t in truth]
        tp = np.zeros(len(entries))
        fp = np.zeros(len(entries))
        for index, (_, image, box) in enumerate(entries):
            mask = truth[image]["labels"] == label
            gt_boxes = truth[image]["boxes"][mask]
            gt_difficult = truth[image]["difficult"][mask]
            if len(gt_boxes) == 0:
                fp[index] = 1
                continue
            overlaps = _iou(box, gt_boxes)
            best = int(np.argmax(overlaps))
            if overlaps[best] < iou_threshold:
                fp[index] = 1
            elif gt_difficult[best]:
                continue  # neither a true nor a false positive
            elif not matched[image][best]:
                matched[image][best] = True
                tp[index] = 1
            else:
                fp[index] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / positives
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps[label] = average_precision(recall, precision, method)
    return {"map": float(np.mean(list(aps.values()))) if aps else 0.0, "ap": aps}

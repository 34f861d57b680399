"""VOC mAP: true/false positives, duplicates, difficult objects, and the 11-point vs area interpolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tract_hub.training.detection_map import average_precision, voc_map


def truth(boxes, labels, difficult=None):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels),
        "difficult": torch.tensor(difficult if difficult is not None else [False] * len(labels)),
    }


def found(boxes, labels, scores):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "scores": torch.tensor(scores, dtype=torch.float32),
    }


BOX = [10.0, 10.0, 29.0, 29.0]
SHIFTED = [14.0, 10.0, 33.0, 29.0]  # IoU 16/24 = 0.67 with BOX
FAR = [50.0, 50.0, 60.0, 60.0]

CASES = [
    ("perfect", [found([BOX], [1], [0.9])], [truth([BOX], [1])], 1.0),
    ("overlap above 0.5", [found([SHIFTED], [1], [0.9])], [truth([BOX], [1])], 1.0),
    ("miss", [found([FAR], [1], [0.9])], [truth([BOX], [1])], 0.0),
    ("wrong class", [found([BOX], [2], [0.9])], [truth([BOX], [1])], 0.0),
    # a higher-scored false positive first: precision 1/2 at recall 1 -> 11-point AP 0.5
    ("false positive first", [found([FAR, BOX], [1, 1], [0.9, 0.8])], [truth([BOX], [1])], 0.5),
    # the duplicate detection of one object is a false positive, after the true one: AP stays 1
    ("duplicate after", [found([BOX, BOX], [1, 1], [0.9, 0.8])], [truth([BOX], [1])], 1.0),
    # detecting a difficult object neither helps nor hurts
    ("difficult ignored", [found([BOX, FAR], [1, 1], [0.9, 0.8])], [truth([BOX, FAR], [1, 1], [True, False])], 1.0),
    # two classes: the mean over classes with ground truth
    ("two classes", [found([BOX, FAR], [1, 2], [0.9, 0.9])], [truth([BOX, BOX], [1, 2])], 0.5),
    ("nothing found", [found([], [], [])], [truth([BOX], [1])], 0.0),
]


@pytest.mark.parametrize(("detections", "ground_truth", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_voc07_map(detections, ground_truth, expected) -> None:
    assert voc_map(detections, ground_truth, num_classes=3)["map"] == pytest.approx(expected, abs=1e-9)


def test_eleven_point_and_area_differ_as_expected() -> None:
    recall = np.array([0.5, 0.5, 1.0])
    precision = np.array([1.0, 0.5, 2 / 3])
    # area: recall 0..0.5 at precision 1, 0.5..1 at 2/3
    assert average_precision(recall, precision, "area") == pytest.approx(0.5 + 0.5 * 2 / 3)
    # 11 points: 0.0..0.5 (6 points) at 1, 0.6..1.0 (5 points) at 2/3
    assert average_precision(recall, precision, "voc07") == pytest.approx((6 + 5 * 2 / 3) / 11)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="1 detection entries for 2 images"):
        voc_map([found([BOX], [1], [0.9])], [truth([BOX], [1])] * 2, num_classes=2)

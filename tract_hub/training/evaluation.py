"""Validation metrics: loss and top-1/top-5 accuracy for classifiers, VOC mAP for detectors, summed over ranks.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from tract_hub.training.distributed import setup_distributed
    >>> data = TensorDataset(torch.eye(3), torch.tensor([0, 1, 2]))
    >>> scores = evaluate_classifier(torch.nn.Identity(), DataLoader(data, batch_size=2), setup_distributed("cpu"))
    >>> scores["top1"], scores["top5"]
    (1.0, 1.0)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .detection_map import voc_map
from .distributed import DistContext, all_reduce_sum, gather_objects
from .progress import progress


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` in order: every sample evaluated exactly once over the ranks."""

    def __init__(self, size: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, size, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def to_device(value: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Tensors (also inside lists, tuples and dicts) on ``device``; 4-d tensors channels-last when asked."""
    if isinstance(value, torch.Tensor):
        value = value.to(device, non_blocking=True)
        if channels_last and value.dim() == 4:
            value = value.contiguous(memory_format=torch.channels_last)
        return value
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_device(v, device, channels_last) for v in value)
    return value


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 / fp16 autocast on ``device``, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module,
    loader: DataLoader,
    context: DistContext,
    *,
    precision: str = "fp32",
    channels_last: bool = False,
    show_progress: bool = False,
) -> dict[str, float]:
    """Cross-entropy, top-1 and top-5 (top-k for fewer than 5 classes) over this rank's share, summed over ranks."""
    model.eval()
    loss_sum = correct1 = correctk = count = 0.0
    for inputs, targets in progress(loader, desc="eval", enabled=show_progress):
        inputs = to_device(inputs, context.device, channels_last)
        targets = to_device(targets, context.device)
        with autocast(precision, context.device):
            logits = model(inputs)
        logits = logits.float()
        loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
        hits = logits.topk(min(5, logits.shape[1]), dim=1).indices == targets[:, None]
        correct1 += float(hits[:, 0].sum())
        correctk += float(hits.any(dim=1).sum())
        count += len(targets)
    loss_sum, correct1, correctk, count = all_reduce_sum([loss_sum, correct1, correctk, count], context)
    return {"val_loss": loss_sum / count, "top1": correct1 / count, "top5": correctk / count}


@torch.no_grad()
def evaluate_detector(
    model: nn.Module,
    loader: DataLoader,
    context: DistContext,
    num_classes: int,
    *,
    precision: str = "fp32",
    show_progress: bool = False,
) -> dict[str, float | None]:
    """VOC2007 11-point mAP (IoU 0.5) over the whole validation set (detections gathered from every rank)."""
    model.eval()
    detections, truth = [], []
    for images, targets in progress(loader, desc="eval", enabled=show_progress):
        with autocast(precision, context.device):
            outputs = model(to_device(images, context.device))
        detections += [{k: v.float().cpu() for k, v in out.items()} for out in outputs]
        truth += [{k: v for k, v in t.items() if k != "image_id"} for t in targets]
    all_detections = [d for part in gather_objects(detections, context) for d in part]
    all_truth = [t for part in gather_objects(truth, context) for t in part]
    return {"val_loss": None, "map": voc_map(all_detections, all_truth, num_classes, method="voc07")["map"]}

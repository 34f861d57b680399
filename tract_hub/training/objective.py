"""What the trainer does differently per task: targets, loss, micro-batches and evaluation.

The trainer calls one :class:`Objective` and never asks which task it trains. :class:`Classification` uses
cross-entropy (or timm's BCE, with label smoothing, mixup and cutmix); :class:`Detection` trains a
Faster R-CNN on its own losses, without the "difficult" boxes, and is evaluated by VOC mAP.

Example:
    >>> import torch
    >>> from tract_hub.training.recipe import TrainConfig
    >>> objective = build_objective("digits", TrainConfig(epochs=1, batch_size=4), num_classes=3)
    >>> model = torch.nn.Linear(5, 3)
    >>> inputs, targets = objective.prepare(torch.randn(4, 5), torch.tensor([0, 1, 2, 0]))
    >>> objective.loss(model, *objective.take(inputs, targets, torch.arange(2))).shape
    torch.Size([])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..artifacts.datasets import task_of
from ..artifacts.task import CLASSIFICATION, DETECTION, Task
from .distributed import DistContext
from .evaluation import evaluate_classifier, evaluate_detector
from .recipe import TrainConfig


class Objective:
    """Task-specific steps of training; see the module docstring."""

    task: Task
    channels_last: bool = True  # whether inputs may be channels-last (a batch tensor, not a list of images)

    def prepare(self, inputs: Any, targets: Any) -> tuple[Any, Any]:
        """The batch as the loss takes it (mixup, dropped boxes)."""
        return inputs, targets

    def take(self, inputs: Any, targets: Any, index: torch.Tensor) -> tuple[Any, Any]:
        """The micro-batch of samples ``index``."""
        return inputs[index], targets[index]

    def loss(self, model: nn.Module, inputs: Any, targets: Any) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, loader: DataLoader, context: DistContext, **options: Any) -> dict:
        """Validation metrics (every rank takes part); keys are ``self.task.eval_keys``."""
        raise NotImplementedError


class Classification(Objective):
    task = CLASSIFICATION

    def __init__(self, config: TrainConfig, num_classes: int) -> None:
        soft_targets = config.mixup > 0 or config.cutmix > 0
        self.criterion = self._criterion(config, soft_targets)
        self.mixup = None
        if soft_targets:
            from timm.data import Mixup

            self.mixup = Mixup(
                mixup_alpha=config.mixup,
                cutmix_alpha=config.cutmix,
                label_smoothing=config.label_smoothing,
                num_classes=num_classes,
            )

    @staticmethod
    def _criterion(config: TrainConfig, soft_targets: bool) -> nn.Module:
        if config.loss == "bce":
            from timm.loss import BinaryCrossEntropy

            return BinaryCrossEntropy(smoothing=0.0 if soft_targets else config.label_smoothing)
        if soft_targets:
            from timm.loss import SoftTargetCrossEntropy

            return SoftTargetCrossEntropy()
        return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def prepare(self, inputs: Any, targets: Any) -> tuple[Any, Any]:
        return self.mixup(inputs, targets) if self.mixup is not None else (inputs, targets)

    def loss(self, model: nn.Module, inputs: Any, targets: Any) -> torch.Tensor:
        return self.criterion(model(inputs), targets)

    def evaluate(self, model: nn.Module, loader: DataLoader, context: DistContext, **options: Any) -> dict:
        return evaluate_classifier(model, loader, context, **options)


class Detection(Objective):
    task = DETECTION
    channels_last = False

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def prepare(self, inputs: Any, targets: Any) -> tuple[Any, Any]:
        kept = [{"boxes": t["boxes"][~t["difficult"]], "labels": t["labels"][~t["difficult"]]} for t in targets]
        return inputs, kept

    def take(self, inputs: Any, targets: Any, index: torch.Tensor) -> tuple[Any, Any]:
        chosen = index.tolist()
        return [inputs[i] for i in chosen], [targets[i] for i in chosen]

    def loss(self, model: nn.Module, inputs: Any, targets: Any) -> torch.Tensor:
        return sum(model(inputs, targets).values())

    def evaluate(self, model: nn.Module, loader: DataLoader, context: DistContext, **options: Any) -> dict:
        options.pop("channels_last", None)
        return evaluate_detector(model, loader, context, self.num_classes, **options)


def build_objective(dataset: str, config: TrainConfig, num_classes: int) -> Objective:
    """The objective of a recipe's data set (its task decides which)."""
    if task_of(dataset) is DETECTION:
        return Detection(num_classes)
    return Classification(config, num_classes)

"""The task a run trains, and what follows from it: its main metric, its metric keys, its Hub pipeline tag.

The one place that knows whether a data set is classification or detection. The trainer, ``tract-hub
compare``, the plots and the model cards ask :func:`task_of` instead of looking for ``"map"`` in a dict.

Example:
    >>> task = task_of("voc2007")
    >>> task.name, task.main_metric, task.pipeline_tag
    ('detection', 'map', 'object-detection')
    >>> task_of("cifar10").main_metric
    'top1'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """A kind of training run; see the module docstring."""

    name: str
    main_metric: str  # the validation metric that picks the best epoch (higher is better)
    metric_label: str  # the main metric as a plot axis says it
    eval_keys: tuple[str, ...]  # what one evaluation reports, in a metrics row
    summary_keys: tuple[str, ...]  # what a run summary keeps of the last evaluated row
    pipeline_tag: str  # the Hugging Face Hub's task id

    @property
    def pipeline_label(self) -> str:
        """The pipeline tag as a sentence names it (``"Image classification"``)."""
        return self.pipeline_tag.replace("-", " ").capitalize()


CLASSIFICATION = Task(
    name="classification",
    main_metric="top1",
    metric_label="top-1 accuracy",
    eval_keys=("val_loss", "top1", "top5"),
    summary_keys=("top1", "top5", "val_loss", "train_loss"),
    pipeline_tag="image-classification",
)
DETECTION = Task(
    name="detection",
    main_metric="map",
    metric_label="mAP",
    eval_keys=("val_loss", "map"),
    summary_keys=("map", "train_loss"),
    pipeline_tag="object-detection",
)
TASKS = {task.name: task for task in (CLASSIFICATION, DETECTION)}

#: Data sets of the recipes that are detection tasks; every other data set is classification.
DETECTION_DATASETS = frozenset({"voc2007"})


def task_of(dataset: str | None) -> Task:
    """The task of a recipe's ``data.dataset`` (classification for any name not listed as detection)."""
    return DETECTION if dataset in DETECTION_DATASETS else CLASSIFICATION

"""The task a run trains, and what follows from it: its metrics, its main metric, its Hub pipeline tag.

The one place that knows which metrics a task reports and how each is shown. The trainer, ``tract-hub
compare``, the plots, the log lines and the model cards ask a run's task (or :func:`metric`) instead of
keeping their own lists of metric names. Which task a data set is lives in the data-set table
(:func:`tract_hub.artifacts.datasets.task_of`).

Example:
    >>> DETECTION.name, DETECTION.main_metric, DETECTION.pipeline_tag, DETECTION.eval_keys
    ('detection', 'map', 'object-detection', ('val_loss', 'map'))
    >>> CLASSIFICATION.main_metric, metric("top1").shown(0.91234), metric("val_loss")
    ('top1', '91.23%', None)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A validation score (higher is better), stored as a fraction in [0, 1] and shown in percent."""

    key: str  # the key in a metrics row ("top1")
    label: str  # as a table or a plot names it ("Top-1 accuracy")
    index_type: str  # the Hub model-index metric type ("accuracy")

    def shown(self, value: float) -> str:
        """``value`` as the command line and the model cards show it: ``"91.23%"``."""
        return f"{100 * value:.2f}%"


TOP1 = Metric("top1", "Top-1 accuracy", "accuracy")
TOP5 = Metric("top5", "Top-5 accuracy", "top_5_accuracy")
MAP = Metric("map", "mAP", "mean_average_precision")


@dataclass(frozen=True)
class Task:
    """A kind of training run; see the module docstring."""

    name: str
    scores: tuple[Metric, ...]  # what one evaluation scores, the main metric first
    metric_label: str  # the main metric as a plot axis says it
    summary_keys: tuple[str, ...]  # what a run summary keeps of the last evaluated row
    pipeline_tag: str  # the Hugging Face Hub's task id

    @property
    def main_metric(self) -> str:
        """The validation metric that picks the best epoch (higher is better)."""
        return self.scores[0].key

    @property
    def eval_keys(self) -> tuple[str, ...]:
        """What one evaluation reports, in a metrics row."""
        return ("val_loss", *(score.key for score in self.scores))

    @property
    def pipeline_label(self) -> str:
        """The pipeline tag as a sentence names it (``"Image classification"``)."""
        return self.pipeline_tag.replace("-", " ").capitalize()


CLASSIFICATION = Task(
    name="classification",
    scores=(TOP1, TOP5),
    metric_label="top-1 accuracy",
    summary_keys=("top1", "top5", "val_loss", "train_loss"),
    pipeline_tag="image-classification",
)
DETECTION = Task(
    name="detection",
    scores=(MAP,),
    metric_label="mAP",
    summary_keys=("map", "train_loss"),
    pipeline_tag="object-detection",
)
TASKS = {task.name: task for task in (CLASSIFICATION, DETECTION)}

#: Every score of every task, by key (the scores are shown in percent; the losses as they are).
METRICS = {score.key: score for task in TASKS.values() for score in task.scores}

#: The order in which tables list metrics: the scores of every task, then the losses.
METRIC_ORDER = (*METRICS, "val_loss", "train_loss")


def metric(key: str) -> Metric | None:
    """The score ``key`` names (``"top1"``), or None for a loss or any other number."""
    return METRICS.get(key)

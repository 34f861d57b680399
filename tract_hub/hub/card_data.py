"""A card's YAML front matter, built with ``huggingface_hub.ModelCardData`` and ``EvalResult``.

* ``library_name``: a library the Hub knows gives the model page its "Use this model" snippet. ``timm`` for timm
  architectures (the Hub shows ``timm.create_model("hf_hub:org/name", pretrained=True)``, which loads them; for
  tract_hub's own CIFAR ResNets after ``import tract_hub.models``, which the card says). No library the Hub
  knows builds a torchvision builder from ``config.json`` (``torchvision`` is not one), and without a
  ``library_name`` the Hub takes a repository with a ``config.json`` for ``transformers`` and shows a snippet
  that fails; torchvision checkpoints therefore name ``tract-hub``, whose ``from_pretrained`` loads them, and
  their card's usage section gives the torchvision + safetensors code.
* ``pipeline_tag`` and the model-index task: from the task (``image-classification`` or ``object-detection``).
* ``datasets`` and the model-index dataset type: the data set's Hub id where one exists (the data-set table,
  :mod:`tract_hub.artifacts.datasets`), else the recipe's data set name.
* the model-index metrics: the task's scores (:mod:`tract_hub.artifacts.task`), as the fractions the run
  records (what ``evaluate``'s accuracy returns); the card's text shows them in percent.

Example:
    >>> from tract_hub.pretrained.spec import ArchitectureSpec
    >>> library_name(ArchitectureSpec("torchvision", "resnet18")), hub_dataset("cifar100")
    ('tract-hub', 'uoft-cs/cifar100')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from ..artifacts.datasets import hub_dataset
from ..artifacts.task import Task
from ..pretrained.spec import ArchitectureSpec


def library_name(spec: ArchitectureSpec) -> str:
    """The ``library_name`` of a checkpoint of ``spec`` (see the module docstring)."""
    return "timm" if spec.source == "timm" else "tract-hub"


def eval_results(task: Task, dataset: str, final: dict[str, Any]) -> list[EvalResult]:
    """One ``EvalResult`` per reported metric of ``final`` (none without a data set)."""
    return [
        EvalResult(
            task_type=task.pipeline_tag,
            task_name=task.pipeline_label,
            dataset_type=hub_dataset(dataset),
            dataset_name=dataset,
            metric_type=score.index_type,
            metric_name=score.label,
            metric_value=float(final[score.key]),
        )
        for score in task.scores
        if isinstance(final.get(score.key), int | float) and not isinstance(final.get(score.key), bool)
    ]


def card_data(
    spec: ArchitectureSpec,
    task: Task,
    *,
    model_name: str,
    license: str,
    dataset: str | None = None,
    base_model: str | None = None,
    final: dict[str, Any] | None = None,
    tags: Sequence[str] = (),
) -> ModelCardData:
    """The front matter of a card."""
    results = eval_results(task, dataset, final or {}) if dataset else []
    return ModelCardData(
        library_name=library_name(spec),
        license=license,
        tags=["tract", task.pipeline_tag, spec.source, "pytorch", *tags],
        pipeline_tag=task.pipeline_tag,
        datasets=[hub_dataset(dataset)] if dataset else None,
        base_model=base_model,
        model_name=model_name if results else None,
        eval_results=results or None,
    )

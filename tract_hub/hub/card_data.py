"""A card's YAML front matter, built with ``huggingface_hub.ModelCardData`` and ``EvalResult``.

* ``library_name``: a library the Hub knows gives the model page its "Use this model" snippet. ``timm`` for timm
  architectures (the Hub shows ``timm.create_model("hf_hub:org/name", pretrained=True)``, which loads them; for
  tract_hub's own CIFAR ResNets after ``import tract_hub.models``, which the card says). No library the Hub
  knows builds a torchvision builder from ``config.json`` (``torchvision`` is not one), and without a
  ``library_name`` the Hub takes a repository with a ``config.json`` for ``transformers`` and shows a snippet
  that fails; torchvision checkpoints therefore name ``tract-hub``, whose ``from_pretrained`` loads them, and
  their card's usage section gives the torchvision + safetensors code.
* ``pipeline_tag`` and the model-index task: from the task (``image-classification`` or ``object-detection``).
* ``datasets`` and the model-index dataset type: the data set's Hub id where one exists (:data:`HUB_DATASETS`),
  else the recipe's data set name.

Example:
    >>> from tract_hub.pretrained.spec import ArchitectureSpec
    >>> library_name(ArchitectureSpec("torchvision", "resnet18")), hub_dataset("cifar100")
    ('tract-hub', 'uoft-cs/cifar100')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from ..artifacts.task import Task
from ..pretrained.spec import ArchitectureSpec

#: Recipe data set -> its Hugging Face Hub data set id (checked on the Hub; digits and image folders have none).
HUB_DATASETS = {
    "cifar10": "uoft-cs/cifar10",
    "cifar100": "uoft-cs/cifar100",
    "imagenet": "ILSVRC/imagenet-1k",
    "flowers102": "nelorth/oxford-flowers",
    "stanford_cars": "tanganke/stanford_cars",
    "voc2007": "HuggingFaceM4/pascal_voc",
}

#: Metrics the model-index reports: run metric key -> (model-index metric type, display name).
INDEX_METRICS = {
    "top1": ("accuracy", "Top-1 accuracy"),
    "top5": ("top_5_accuracy", "Top-5 accuracy"),
    "map": ("mean_average_precision", "mAP"),
}


def library_name(spec: ArchitectureSpec) -> str:
    """The ``library_name`` of a checkpoint of ``spec`` (see the module docstring)."""
    return "timm" if spec.source == "timm" else "tract-hub"


def hub_dataset(dataset: str) -> str:
    """The Hub data set id of a recipe's data set, or the name itself when the Hub has none."""
    return HUB_DATASETS.get(dataset, dataset)


def eval_results(task: Task, dataset: str, final: dict[str, Any]) -> list[EvalResult]:
    """One ``EvalResult`` per reported metric of ``final`` (none without a data set)."""
    return [
        EvalResult(
            task_type=task.pipeline_tag,
            task_name=task.pipeline_label,
            dataset_type=hub_dataset(dataset),
            dataset_name=dataset,
            metric_type=kind,
            metric_name=label,
            metric_value=float(final[key]),
        )
        for key, (kind, label) in INDEX_METRICS.items()
        if isinstance(final.get(key), int | float) and not isinstance(final.get(key), bool)
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

"""The project's file formats: what training writes and the hub reads (and the reverse), typed and versioned.

These modules know files, not models: none imports an architecture, patching, the registry, ``timm``,
``torchvision`` or ``huggingface_hub`` (``tests/test_layering.py`` holds it). Building a model from a
checkpoint, or a checkpoint from a model, is :mod:`tract_hub.pretrained`'s. Neither :mod:`tract_hub.training`
nor :mod:`tract_hub.hub` owns these formats; both import them from here and not from each other:

* ``run_dir``: a run directory (:class:`RunDirectory` writes and reads it; :class:`RunSummary` is its summary);
* ``metadata``: TrAct's block in a checkpoint's ``config.json`` (:class:`TrActMetadata`);
* ``checkpoint_files``: the files of a Hub-format checkpoint directory and the reader of its ``config.json``;
  ``weights``: the safetensors weights file (of run checkpoints and Hub checkpoints alike);
* ``task``: classification or detection, its metrics (shown in percent) and the main metric;
* ``datasets``: the data-set table, one row per data set (task, classes, channels, normalization, Hub id, the
  loader of :mod:`tract_hub.training.data` that reads it);
* ``publish``: what a checkpoint publishes of its run (the recipe without machine paths, timm's data config);
* ``curves``: training curves of metrics rows; ``files``: atomic writes, JSON, sha256; ``rotation``: replacing a
  directory so that no sequence of kills loses its newest complete version, refusing what it did not make;
  ``reading``: reading files that someone else wrote (confined to their folder, bounded in size and depth; the one
  YAML reader); ``schema``: typed dataclasses from plain data (recipes, summaries, metadata).

Example:
    >>> from tract_hub.artifacts import TrActMetadata, task_of
    >>> TrActMetadata(lam=0.1, first_layers=("conv1",)).to_json()["lam"], task_of("cifar10").main_metric
    (0.1, 'top1')
"""

from .datasets import task_of
from .metadata import FORMAT_VERSION, METADATA_KEY, TrActMetadata, read_metadata
from .run_dir import ModelRecord, Run, RunDirectory, RunSummary
from .task import CLASSIFICATION, DETECTION, Task

__all__ = [
    "CLASSIFICATION",
    "DETECTION",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "ModelRecord",
    "Run",
    "RunDirectory",
    "RunSummary",
    "Task",
    "TrActMetadata",
    "read_metadata",
    "task_of",
]

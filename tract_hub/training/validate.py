"""Evaluate trained weights on a validation set (``tract-hub eval``, as timm's ``validate.py`` and torchvision's
``--test-only``): top-1 / top-5 and loss for classifiers, VOC mAP for detectors.

The weights come from a run directory of this trainer (its ``best`` or ``last`` checkpoint, the trained or the
EMA weights; the model, data set and evaluation transform are the run's own) or from a Hub-format checkpoint (a
local directory, ``hf-hub:org/name`` or ``org/name``; the data set is the one its recipe records, else
``dataset=``, prepared with the checkpoint's ``pretrained_cfg`` mean, std, input size and crop). Data keys can
be changed with ``KEY=VALUE`` overrides (``data.root=...``, ``data.val_split=test``, ...). Where the run or
checkpoint recorded metrics of the same weights on the same data, they come back too, for comparison.

Example (a tiny run, then its last checkpoint evaluated again):
    >>> import tempfile
    >>> from tract_hub.training import train
    >>> from tract_hub.training.demo_recipe import demo_recipe
    >>> tiny = ["train.epochs=1", "data.digits.size=8", "model.kwargs.width=4", "data.max_train_samples=128"]
    >>> run = train(demo_recipe(tiny), tempfile.mkdtemp() + "/run", device="cpu").run_dir
    >>> result = validate(run, checkpoint="last", device="cpu")
    >>> result.metrics["top1"] == result.recorded["top1"]
    True
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from ..artifacts.checkpoint_files import CONFIG_NAME, WEIGHTS_NAME
from ..artifacts.datasets import DATASETS, task_of
from ..artifacts.metadata import read_metadata
from ..artifacts.run_dir import BEST, CHECKPOINTS, CheckpointName, RunDirectory
from ..artifacts.schema import from_data, set_path
from ..artifacts.task import DETECTION, Task
from ..artifacts.weights import load_strict, read_weights
from ..errors import DataError, InvalidArgumentError, RecipeError
from ..pretrained import fetch_file, load_checkpoint, parse_source
from ..pretrained.heads import head_num_classes
from . import checkpoint as run_checkpoint
from .data import build_datasets
from .distributed import all_reduce_sum, setup_distributed, teardown_distributed
from .evaluation import ShardSampler, evaluate_classifier, evaluate_detector
from .modeling import build_model
from .recipe import DataConfig, parse_override, recipe_from_data

logger = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """What :func:`validate` measured."""

    source: str  # what was evaluated, in words
    dataset: str
    samples: int
    task: Task
    metrics: dict[str, float | None]  # the task's eval keys (fractions in [0, 1] for accuracies and mAP)
    recorded: dict[str, Any] | None = None  # the same weights' metrics as the run or checkpoint recorded them
    details: dict[str, Any] = field(default_factory=dict)  # checkpoint, epoch, EMA, image size, ...

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dataset": self.dataset,
            "samples": self.samples,
            "metrics": self.metrics,
            "recorded": self.recorded,
            **self.details,
        }


@dataclass
class _Prepared:
    model: nn.Module
    data: DataConfig
    source: str
    precision: str = "fp32"
    channels_last: bool = False
    batch_size: int | None = None
    recorded: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


#: Data keys that say where the data lives, not what it is: changing them keeps the recorded metrics comparable.
_LOCATION_KEYS = frozenset({"data.root", "data.download"})


def _apply(section: dict[str, Any], overrides: list[str]) -> tuple[dict[str, Any], bool]:
    """``data.KEY=VALUE`` overrides applied to a recipe's ``data`` section; also whether the data stayed the same
    (only its location changed)."""
    data = {"data": dict(section)}
    same = True
    for text in overrides:
        key, value = parse_override(text)
        if not key.startswith("data."):
            raise RecipeError(f"override {text!r}: tract-hub eval changes data.* keys only (e.g. data.root=DIR)")
        set_path(data, key, value)
        same = same and key in _LOCATION_KEYS
    return data["data"], same


def _recorded_row(run: RunDirectory, epoch: int | None, ema: bool, task: Task) -> dict[str, Any] | None:
    """The metrics of ``epoch``'s row (its ``ema_*`` keys with ``ema``), by the task's plain key names."""
    if epoch is None or not run.metrics_path.is_file():
        return None
    rows = [row for row in run.read_metrics() if row.get("epoch") == epoch]
    if not rows:
        return None
    prefix = "ema_" if ema else ""
    found = {key: rows[-1].get(prefix + key) for key in task.eval_keys}
    return found if found.get(task.main_metric) is not None else None


def _from_run(path: Path, which: CheckpointName, ema: bool, overrides: list[str]) -> _Prepared:
    run = RunDirectory(path)
    summary = run.read_summary()
    saved = run.read_recipe()
    if saved is None:
        raise DataError(f"run {str(path)!r} has no recipe.yaml, so its data set and model are unknown")
    weights = run.weights(which, ema=ema)
    # the model as the run built it, from its recorded architecture (model.init is not fetched again)
    model_section = {
        **saved.get("model", {}),
        "architecture": summary.model.architecture,
        "kwargs": dict(summary.model.kwargs),
        "init": None,
        "pretrained": False,
    }
    data_section, same_data = _apply(saved.get("data", {}), overrides)
    recipe = recipe_from_data({**saved, "model": model_section, "data": data_section}, source=str(run.recipe_path))
    model = build_model(recipe, summary.num_classes or 0).model
    load_strict(model, read_weights(weights), f"{summary.model.architecture} ({weights})")
    state = run_checkpoint.load_training_state(weights.parent)
    epoch = int(state["epoch"]) if "epoch" in state else None
    recorded = _recorded_row(run, epoch, ema, task_of(recipe.data.dataset)) if same_data else None
    train = recipe.train
    return _Prepared(
        model,
        recipe.data,
        f"{path} ({which} checkpoint, epoch {epoch}{', EMA weights' if ema else ''})",
        precision=train.precision,
        channels_last=train.channels_last,
        batch_size=train.eval_batch_size or train.batch_size // train.accum_steps,
        recorded=recorded,
        details={"checkpoint": which, "epoch": epoch, "ema": ema},
    )


def _data_of_checkpoint(config: dict[str, Any], recipe: dict[str, Any], dataset: str | None) -> dict[str, Any]:
    """The data section to evaluate a Hub checkpoint on: its recipe's, else ``dataset`` prepared as the
    checkpoint's ``pretrained_cfg`` says (mean, std, input size, crop), as timm's validate.py does."""
    section = dict(recipe.get("data") or {})
    if dataset is not None and dataset != section.get("dataset"):
        section = {"dataset": dataset}  # another data set: nothing of the recorded one applies
    if "dataset" not in section:
        return section
    if recipe.get("data"):
        return section
    pretrained_cfg = config.get("pretrained_cfg") or {}
    if pretrained_cfg.get("mean") and pretrained_cfg.get("std"):
        section["mean"], section["std"] = list(pretrained_cfg["mean"]), list(pretrained_cfg["std"])
    input_size = pretrained_cfg.get("input_size")
    info = DATASETS.get(section["dataset"])
    if isinstance(input_size, list | tuple) and (info is None or info.transforms):
        section["image_size"] = int(input_size[-1])
    if isinstance(pretrained_cfg.get("crop_pct"), float):
        section["eval_crop_pct"] = pretrained_cfg["crop_pct"]
    return section


def _from_checkpoint(source: str, dataset: str | None, overrides: list[str], **hub: Any) -> _Prepared:
    where = parse_source(source)
    config_path = fetch_file(where, CONFIG_NAME, **hub)
    weights_path = fetch_file(where, WEIGHTS_NAME, **hub)
    model, config = load_checkpoint(config_path, weights_path, str(where))
    metadata = read_metadata(config)
    recipe = (metadata.recipe if metadata is not None else None) or {}
    section = _data_of_checkpoint(config, recipe, dataset)
    if "dataset" not in section:
        raise InvalidArgumentError(
            f"{source}: the checkpoint records no data set; name one (tract-hub eval {source} --data DATASET "
            "--data-root DIR)"
        )
    section, same_data = _apply(section, overrides)
    data = from_data(DataConfig, section, error=RecipeError)
    recorded = None
    if (
        metadata is not None
        and data.dataset == metadata.dataset
        and same_data
        and section == (recipe.get("data") or section)
    ):
        values = (metadata.best if metadata.checkpoint == BEST else metadata.metrics) or {}
        recorded = {k: v for k, v in values.items() if k != "epoch"} or None
    return _Prepared(model, data, str(where), recorded=recorded, details={"checkpoint": str(where)})


def _validation_set(config: DataConfig) -> tuple[Any, int, Any]:
    """The validation set, its number of classes and collate function. A folder data set reads only its
    validation split (a large training folder is not scanned)."""
    if config.info.loader == "image_folder":
        config = DataConfig(**{**config.__dict__, "train_split": config.val_split})
    splits = build_datasets(config)
    return splits.val, splits.num_classes, splits.collate


def validate(
    source: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    checkpoint: CheckpointName = BEST,
    ema: bool = False,
    device: str = "auto",
    batch_size: int | None = None,
    precision: str | None = None,
    workers: int = 0,
    show_progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> EvalResult:
    """Evaluate the weights of ``source`` (a run directory or a Hub-format checkpoint); see the module docstring.

    ``checkpoint`` (``best``/``last``) and ``ema`` choose the weights of a run directory; ``dataset`` names the
    data set of a checkpoint that records none (or another one); ``overrides`` change ``data.*`` keys;
    ``batch_size`` and ``precision`` default to the run's own evaluation settings (else 128, fp32).
    """
    if checkpoint not in CHECKPOINTS:
        raise InvalidArgumentError(f"checkpoint={checkpoint!r}: expected one of {CHECKPOINTS}")
    overrides = list(overrides)
    path = Path(source)
    if path.is_dir() and RunDirectory(path).summary_path.is_file():
        if dataset is not None:
            overrides.insert(0, f"data.dataset={dataset}")
        prepared = _from_run(path, checkpoint, ema, overrides)
    else:
        if ema:
            raise InvalidArgumentError(f"--ema applies to a run directory; {str(source)!r} is a Hub-format checkpoint")
        prepared = _from_checkpoint(str(source), dataset, overrides, cache_dir=cache_dir, token=token)
    context = setup_distributed(device)
    try:
        return _evaluate(prepared, context, batch_size, precision, workers, show_progress)
    finally:
        teardown_distributed(context)


def _evaluate(
    prepared: _Prepared, context: Any, batch_size: int | None, precision: str | None, workers: int, show_progress: bool
) -> EvalResult:
    val, num_classes, collate = _validation_set(prepared.data)
    task = task_of(prepared.data.dataset)
    model = prepared.model
    predicts = head_num_classes(model) if task is not DETECTION else None
    if predicts is not None and predicts != num_classes:
        raise DataError(
            f"{prepared.source} predicts {predicts} classes but {prepared.data.dataset} has {num_classes}; "
            "evaluate on the data set it was trained on (--data, --data-root)"
        )
    model = model.to(context.device)
    size = batch_size or prepared.batch_size or 128
    sampler = ShardSampler(len(val), context.rank, context.world_size)
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": context.device.type == "cuda"}
    if collate is not None:
        options["collate_fn"] = collate
    loader = DataLoader(val, batch_size=size, sampler=sampler, **options)
    chosen = precision or prepared.precision
    if task is DETECTION:
        metrics = evaluate_detector(model, loader, context, num_classes, precision=chosen, show_progress=show_progress)
    else:
        metrics = evaluate_classifier(
            model,
            loader,
            context,
            precision=chosen,
            channels_last=prepared.channels_last,
            show_progress=show_progress,
        )
    (samples,) = all_reduce_sum([float(len(sampler))], context)
    details = {**prepared.details, "batch_size": size, "precision": chosen, "device": str(context.device)}
    return EvalResult(prepared.source, prepared.data.dataset, int(samples), task, metrics, prepared.recorded, details)

"""The training recipe: a validated, versioned dataclass tree read from YAML.

A recipe describes one experiment independently of the hardware it runs on: ``train.batch_size`` is the global
batch of one optimizer step (split over ``train.accum_steps`` micro-batches and over the data-parallel ranks),
and schedule milestones are fractions of the run. ``lam`` is TrAct's lambda, ``null`` for the vanilla run, so
every recipe is a pair: ``tract-hub train RECIPE`` and ``tract-hub train RECIPE --set lam=null``.

Example:
    >>> recipe = load_recipe("recipes/demo_digits.yaml", overrides=["lam=null", "train.epochs=2"])
    >>> recipe.lam is None, recipe.train.epochs
    (True, 2)
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..artifacts.datasets import DATASETS, DatasetInfo, dataset_info
from ..artifacts.reading import parse_yaml as read_yaml
from ..artifacts.reading import read_regular_text
from ..artifacts.schema import from_data, set_path, to_data
from ..artifacts.task import DETECTION, Task
from ..errors import InvalidArgumentError, RecipeError

#: The recipe format this version of tract_hub reads and writes.
FORMAT_VERSION = 1

#: The longest recipe file read (the resolved recipes are about 2 kB).
MAX_RECIPE_BYTES = 1 * 2**20

#: More epochs than any experiment runs (the paper's longest is 800): a larger number is a typo.
MAX_EPOCHS = 100_000

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RecipeError(message)


def _positive(name: str, value: float | int) -> None:
    _check(value > 0, f"{name}={value!r} must be > 0")


def _non_negative(name: str, value: float | int) -> None:
    _check(value >= 0, f"{name}={value!r} must be >= 0")


@dataclass
class DetectionConfig:
    """A Faster R-CNN on the ``features`` of a VGG backbone (torchvision's ``vgg*`` builders)."""

    frozen_layers: int = 0  # leading modules of vgg.features kept frozen (10 = conv1+conv2 blocks, the usual)
    min_size: int = 600
    max_size: int = 1000
    anchor_sizes: tuple[int, ...] = (128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    roi_output_size: int = 7

    def __post_init__(self) -> None:
        _non_negative("frozen_layers", self.frozen_layers)
        _positive("min_size", self.min_size)
        _check(self.max_size >= self.min_size, f"max_size={self.max_size} must be >= min_size={self.min_size}")
        _check(bool(self.anchor_sizes) and all(s > 0 for s in self.anchor_sizes), "anchor_sizes must be > 0")
        _check(bool(self.aspect_ratios) and all(r > 0 for r in self.aspect_ratios), "aspect_ratios must be > 0")
        _positive("roi_output_size", self.roi_output_size)


@dataclass
class ModelConfig:
    """What to train: an architecture by name, or a checkpoint to fine-tune (``init``)."""

    architecture: str | None = None  # timm:<arch> | torchvision:<builder> | a bare timm/torchvision name
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor keywords (num_classes defaults to the data's)
    pretrained: bool = False  # the architecture's own default weights (timm / torchvision; needs the network)
    init: str | None = None  # fine-tune from: a local hub directory, hf-hub:org/name[@rev], org/name or a run dir
    input_norm: Literal["none", "patch_standardize", "dual_patch_norm"] = "none"  # ViT ablations of the paper
    detector: Literal["none", "faster_rcnn"] = "none"
    detection: DetectionConfig = field(default_factory=DetectionConfig)

    def __post_init__(self) -> None:
        _check(
            (self.architecture is None) != (self.init is None),
            "model: give exactly one of 'architecture' (train that architecture) and 'init' (fine-tune a "
            f"checkpoint); got architecture={self.architecture!r}, init={self.init!r}",
        )
        _check(not (self.init and self.pretrained), "model: 'pretrained' applies to 'architecture', not to 'init'")
        if self.architecture is not None:
            from ..errors import UnknownArchitectureError
            from ..models import resolve_architecture

            try:
                source, arch = resolve_architecture(self.architecture)
            except UnknownArchitectureError as error:
                raise RecipeError(f"model.architecture: {error}") from None
            if self.detector == "faster_rcnn":
                _check(
                    source == "torchvision" and arch.startswith("vgg"),
                    f"model.detector='faster_rcnn' builds on a torchvision VGG backbone (torchvision:vgg16); "
                    f"got {self.architecture!r}",
                )
        _check(
            not (self.detector != "none" and self.input_norm != "none"),
            "model.input_norm is a ViT ablation; it cannot be combined with a detector",
        )
        for key in ("pretrained", "pretrained_cfg", "checkpoint_path", "pretrained_cfg_overlay"):
            _check(key not in self.kwargs, f"model.kwargs.{key} is not allowed; use model.pretrained or model.init")


@dataclass
class DigitsConfig:
    """scikit-learn's 8x8 digits, upsampled and with a fixed random per-image contrast and brightness change."""

    size: int = 16  # side length after bilinear upsampling (8 = the original images)
    contrast: tuple[float, float] = (0.1, 1.0)  # per-image contrast factor, log-uniform in this range
    brightness: bool = True  # a per-image offset, uniform in what keeps pixels inside [0, 1]
    corruption_seed: int = 0  # fixes each image's contrast and brightness (part of the data set, not augmentation)
    test_fraction: float = 0.25  # held-out images (stratified)
    split_seed: int = 0

    def __post_init__(self) -> None:
        _check(self.size >= 8, f"digits.size={self.size} must be >= 8 (the images are 8x8)")
        low, high = self.contrast
        _check(0 < low <= high <= 1, f"digits.contrast={list(self.contrast)} must satisfy 0 < low <= high <= 1")
        _check(0 < self.test_fraction < 1, f"digits.test_fraction={self.test_fraction} must be in (0, 1)")


@dataclass
class DataConfig:
    """Where the images come from and how they are prepared."""

    dataset: str  # a name of the data-set table (tract_hub.artifacts.datasets): digits, fashion_mnist, cifar10, ...
    root: str | None = None  # default: --data-root, then $TRACT_HUB_DATA, then ./data
    download: bool = False  # let torchvision download the data set (never done unless asked)
    train_split: str = "train"  # image_folder / imagenet: sub-directory names
    val_split: str = "val"
    image_size: int | None = None  # training resolution (default: the data set's own, 224 for ImageNet)
    eval_image_size: int | None = None  # default: image_size
    eval_crop_pct: float = 0.875  # resize to eval_image_size / eval_crop_pct, then center-crop
    augment: Literal["none", "cifar", "cifar_rotate15", "imagenet", "deit3", "finetune"] = "none"
    color_jitter: float = 0.0
    normalize: Literal["standard", "unit", "raw255"] = "standard"  # standardized | [0, 1] | [0, 255]
    mean: tuple[float, ...] | None = None  # default: the data set's own statistics
    std: tuple[float, ...] | None = None
    max_train_samples: int | None = None  # the first N training samples (quick runs)
    max_val_samples: int | None = None
    digits: DigitsConfig = field(default_factory=DigitsConfig)

    def __post_init__(self) -> None:
        try:
            info = dataset_info(self.dataset)
        except InvalidArgumentError as error:
            raise RecipeError(f"data.dataset: {error}") from None
        for name in ("image_size", "eval_image_size", "max_train_samples", "max_val_samples"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"data.{name}={value!r} must be > 0 or null")
        _check(0 < self.eval_crop_pct <= 1, f"data.eval_crop_pct={self.eval_crop_pct} must be in (0, 1]")
        _non_negative("data.color_jitter", self.color_jitter)
        _check((self.mean is None) == (self.std is None), "data.mean and data.std must be given together (or neither)")
        if self.mean is not None and self.std is not None:
            _check(len(self.mean) == len(self.std), "data.mean and data.std must have the same length")
            _check(all(s > 0 for s in self.std), f"data.std={list(self.std)} must be > 0")
        _check(
            not (info.needs_size and info.image_size is None and self.image_size is None),
            f"data.image_size is required for dataset={self.dataset!r} (the images must be batched at one size)",
        )
        if info.task is DETECTION:
            _check(
                self.augment in ("none", "finetune"),
                f"data.augment for {self.dataset}: 'none' or 'finetune' (flip)",
            )

    @property
    def info(self) -> DatasetInfo:
        """The data set's row of the data-set table."""
        return dataset_info(self.dataset)


@dataclass
class FirstLayerOptimizerConfig:
    """A separate optimizer for the first layer (the paper's ablation: first layer SGD, the rest Adam)."""

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _positive("optimizer.first_layer.lr", self.lr)
        _check(0 <= self.momentum < 1, f"optimizer.first_layer.momentum={self.momentum} must be in [0, 1)")
        _non_negative("optimizer.first_layer.weight_decay", self.weight_decay)


@dataclass
class OptimizerConfig:
    name: Literal["sgd", "adam", "adamw", "lamb"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adam / adamw / lamb
    eps: float = 1e-8
    weight_decay: float = 0.0
    decay_norm_and_bias: bool = True  # False: as timm/DeiT, none on biases, norms and the model's no_weight_decay()
    first_layer: FirstLayerOptimizerConfig | None = None

    def __post_init__(self) -> None:
        _positive("optimizer.lr", self.lr)
        _check(0 <= self.momentum < 1, f"optimizer.momentum={self.momentum} must be in [0, 1)")
        _check(all(0 <= b < 1 for b in self.betas), f"optimizer.betas={list(self.betas)} must be in [0, 1)")
        _positive("optimizer.eps", self.eps)
        _non_negative("optimizer.weight_decay", self.weight_decay)
        _check(not (self.nesterov and self.name != "sgd"), "optimizer.nesterov applies to sgd only")


@dataclass
class ScheduleConfig:
    """Learning-rate factor per optimizer step: linear warm-up, then cosine, step decay or constant."""

    name: Literal["cosine", "multistep", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    milestones: tuple[float, ...] = ()  # multistep: fractions of the run (0.3 = after 30% of the steps)
    gamma: float = 0.1  # multistep: factor at each milestone
    min_lr_ratio: float = 0.0  # cosine: final lr / peak lr

    def __post_init__(self) -> None:
        _non_negative("schedule.warmup_epochs", self.warmup_epochs)
        _check(
            all(0 < m < 1 for m in self.milestones) and list(self.milestones) == sorted(set(self.milestones)),
            f"schedule.milestones={list(self.milestones)} must be increasing fractions of the run in (0, 1) "
            "(e.g. [0.3, 0.6, 0.8] for epochs 60, 120, 160 of 200)",
        )
        _check(
            not (self.milestones and self.name != "multistep"),
            f"schedule.milestones apply to name='multistep', not {self.name!r}",
        )
        _positive("schedule.gamma", self.gamma)
        _check(0 <= self.min_lr_ratio <= 1, f"schedule.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")


@dataclass
class EmaConfig:
    """An exponential moving average of the weights (timm's ``--model-ema``), evaluated and saved beside them."""

    decay: float = 0.9998  # per optimizer step (timm's default)
    warmup: bool = False  # timm's EMA warm-up: the decay grows from 0 towards `decay` over the first steps

    def __post_init__(self) -> None:
        _check(0 < self.decay < 1, f"train.ema.decay={self.decay!r} must be in (0, 1) (e.g. 0.9998)")


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int  # images per optimizer step, in total (over accum_steps micro-batches and all ranks)
    accum_steps: int = 1  # micro-batches per optimizer step (TrAct then runs in exact mode)
    eval_batch_size: int | None = None  # images per evaluation batch per rank (default: the micro-batch)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16 autocast (CPU/GPU); fp16 + GradScaler (GPU)
    loss: Literal["cross_entropy", "bce"] = "cross_entropy"  # bce: timm's BinaryCrossEntropy (DeiT-III)
    label_smoothing: float = 0.0
    mixup: float = 0.0  # timm Mixup alpha (0 = off)
    cutmix: float = 0.0  # timm CutMix alpha (0 = off)
    grad_clip: float | None = None  # max global gradient norm (after TrAct and unscaling)
    seed: int = 0
    channels_last: bool = False
    compile: bool = False  # torch.compile the model (TrAct's first layer stays eager)
    workers: int | None = None  # data loader workers per rank (default: 0 on CPU, up to 8 on GPU)
    drop_last: bool = True  # drop the last incomplete training batch
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    ema: EmaConfig | None = None  # EMA weights beside the trained ones (null: none)

    def __post_init__(self) -> None:
        _positive("train.epochs", self.epochs)
        _check(
            self.epochs <= MAX_EPOCHS,
            f"train.epochs={self.epochs:,} is more than {MAX_EPOCHS:,} epochs, more than any experiment runs; give "
            "the number of epochs to train",
        )
        _positive("train.batch_size", self.batch_size)
        _positive("train.accum_steps", self.accum_steps)
        _check(
            self.batch_size % self.accum_steps == 0,
            f"train.batch_size={self.batch_size} is not divisible by train.accum_steps={self.accum_steps}",
        )
        _check(self.eval_batch_size is None or self.eval_batch_size > 0, "train.eval_batch_size must be > 0")
        _check(0 <= self.label_smoothing < 1, f"train.label_smoothing={self.label_smoothing} must be in [0, 1)")
        _non_negative("train.mixup", self.mixup)
        _non_negative("train.cutmix", self.cutmix)
        _check(self.grad_clip is None or self.grad_clip > 0, f"train.grad_clip={self.grad_clip} must be > 0")
        _check(self.workers is None or self.workers >= 0, f"train.workers={self.workers} must be >= 0")
        _positive("train.eval_every", self.eval_every)


@dataclass
class Recipe:
    """One experiment. ``lam`` is TrAct's lambda (``None``: the vanilla run)."""

    name: str
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    lam: float | None = 0.1
    target: str | list[str] | None = None  # first layer(s) to patch (default: located by tract_hub's registry)
    description: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _check(
            self.format_version == FORMAT_VERSION,
            f"format_version={self.format_version} is not supported; this tract_hub reads version {FORMAT_VERSION}",
        )
        _check(
            bool(_NAME.match(self.name)),
            f"name={self.name!r} must be letters, digits and _.+- (it names the run directory)",
        )
        if self.lam is not None:
            _check(
                math.isfinite(self.lam) and self.lam > 0,
                f"lam={self.lam!r} must be a positive number (TrAct's lambda, 0.05 to 0.2 in the paper) or null "
                "for the vanilla run",
            )
        if isinstance(self.target, list):
            _check(bool(self.target), "target must be a layer name, a non-empty list of names, or null")
        detection = [name for name, info in DATASETS.items() if info.task is DETECTION]
        if self.task is DETECTION:
            _check(
                self.model.detector != "none",
                f"data.dataset={self.data.dataset!r} is a detection data set; it needs model.detector='faster_rcnn'",
            )
        elif self.model.detector != "none":
            _check(False, f"model.detector={self.model.detector!r} needs a detection data set ({', '.join(detection)})")
        if self.optimizer.first_layer is not None:
            _check(self.optimizer.name != "lamb", "optimizer.first_layer cannot be combined with lamb")
        _check(
            not (self.train.loss == "bce" and self.task is DETECTION),
            "train.loss does not apply to detection (Faster R-CNN has its own losses)",
        )

    @property
    def task(self) -> Task:
        """Classification or detection (from ``data.dataset``; detection needs ``model.detector``)."""
        return self.data.info.task

    @property
    def variant(self) -> str:
        """``"tract"`` or ``"vanilla"``."""
        return "vanilla" if self.lam is None else "tract"


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """YAML text as plain data, through the project's one bounded YAML reader
    (:func:`tract_hub.artifacts.reading.parse_yaml`: safe tags, no duplicate keys, no aliases, bounded depth,
    ``1e-3`` read as a float); anything it refuses is a :class:`RecipeError` naming ``source``."""
    return read_yaml(text, source, error=RecipeError, limit=MAX_RECIPE_BYTES)


def parse_override(text: str) -> tuple[str, Any]:
    """``"optimizer.lr=1e-3"`` -> ``("optimizer.lr", 0.001)``; the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {text!r} is not KEY=VALUE (e.g. --set optimizer.lr=0.05 or --set lam=null)")
    return key.strip(), parse_yaml(value, f"override {text!r}") if value.strip() else None


def recipe_from_data(data: Any, overrides: Iterable[str] = (), source: str = "recipe") -> Recipe:
    """Validate plain data (with ``KEY=VALUE`` overrides applied) into a :class:`Recipe`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source} must be a mapping of keys to values, not {type(data).__name__}")
    data = copy.deepcopy(data)
    for override in overrides:
        key, value = parse_override(override)
        set_path(data, key, value)
    try:
        return from_data(Recipe, data)
    except RecipeError as error:
        raise RecipeError(f"{source}: {error}") from None


def resolve_recipe_path(name: str | Path) -> Path:
    """A recipe file: the path itself, or ``recipes/<name>.yaml`` relative to the working directory."""
    path = Path(name)
    if path.is_file() or (path.exists() and not path.is_dir()):  # a device or a pipe is refused when read
        return path
    candidate = Path("recipes") / f"{name}.yaml"
    if path.suffix == "" and candidate.is_file():
        return candidate
    raise RecipeError(f"recipe {str(name)!r} is not a file (nor recipes/{path.name}.yaml); give the YAML file's path")


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe YAML file, apply ``KEY=VALUE`` overrides, validate (see the module docstring)."""
    path = resolve_recipe_path(path)
    return recipe_from_data(read_recipe_data(path), overrides, source=str(path))


def read_recipe_data(path: str | Path) -> Any:
    """The plain data of a recipe file: a regular file (a device or a pipe is refused), at most
    :data:`MAX_RECIPE_BYTES`, read by :func:`parse_yaml`."""
    text = read_regular_text(path, error=RecipeError, limit=MAX_RECIPE_BYTES)
    return parse_yaml(text, str(path))


def recipe_to_data(recipe: Recipe) -> dict[str, Any]:
    """Every key of the recipe as plain data (tuples as lists)."""
    return to_data(recipe)


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML, every key, sorted."""
    return yaml.safe_dump(recipe_to_data(recipe), sort_keys=True, default_flow_style=False, allow_unicode=True)


def with_overrides(recipe: Recipe, overrides: Sequence[str]) -> Recipe:
    """A copy of ``recipe`` with ``KEY=VALUE`` overrides applied and validated again."""
    return recipe_from_data(recipe_to_data(recipe), overrides, source=f"recipe {recipe.name!r}")


__all__ = [
    "FORMAT_VERSION",
    "DataConfig",
    "DetectionConfig",
    "DigitsConfig",
    "EmaConfig",
    "FirstLayerOptimizerConfig",
    "ModelConfig",
    "OptimizerConfig",
    "Recipe",
    "ScheduleConfig",
    "TrainConfig",
    "dump_recipe",
    "load_recipe",
    "parse_override",
    "parse_yaml",
    "read_recipe_data",
    "recipe_from_data",
    "recipe_to_data",
    "with_overrides",
]

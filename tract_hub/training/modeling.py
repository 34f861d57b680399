"""Build the model a recipe names and install TrAct on it.

The model is an architecture by name (``tract_hub.models.create_model``: timm and torchvision only), a checkpoint
to fine-tune (``model.init``: a hub directory or repository through ``tract_hub.from_pretrained``, or a run
directory of this trainer), or a Faster R-CNN on a VGG backbone (``model.detector``:
:mod:`tract_hub.models.faster_rcnn_vgg`). Its first layer is the registry's answer, or the recipe's ``target``.

Example:
    >>> from tract_hub.training.recipe import load_recipe
    >>> recipe = load_recipe("recipes/demo_digits.yaml")
    >>> built = build_model(recipe, num_classes=10)
    >>> built.architecture, built.kwargs["in_chans"]
    ('timm:tract_resnet8_cifar', 1)
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .._api import patch
from ..artifacts.checkpoint_files import CONFIG_NAME, WEIGHTS_NAME
from ..artifacts.run_dir import BEST, RunDirectory
from ..artifacts.weights import load_strict, read_weights
from ..errors import RecipeError, TrActError
from ..models import create_model, resolve_architecture
from ..models.faster_rcnn_vgg import build_faster_rcnn_vgg
from ..patching import patched_layers
from ..pretrained import ArchitectureSpec, fetch_file, load_checkpoint, parse_source
from ..pretrained.heads import replace_head
from ..registry import locate
from .input_norm import apply_input_norm
from .recipe import Recipe

logger = logging.getLogger(__name__)


@dataclass
class BuiltModel:
    """A model and what the run directory records about it."""

    model: nn.Module
    architecture: str  # "timm:<arch>" or "torchvision:<builder>" (for a detector: its backbone)
    kwargs: dict[str, Any] = field(default_factory=dict)


def canonical_architecture(name: str) -> str:
    """``"timm:<arch>"`` / ``"torchvision:<builder>"`` for any name :func:`resolve_architecture` accepts."""
    source, arch = resolve_architecture(name)
    return f"{source}:{arch}"


def _adapt_state_dict(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """The model family's own timm ``checkpoint_filter_fn`` (e.g. a ViT's position embedding resampled to a new
    resolution), when it has one."""
    module = sys.modules.get(type(model).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    return filter_fn(state, model) if callable(filter_fn) else state


def _from_run_directory(path: Path, num_classes: int, overrides: dict[str, Any]) -> BuiltModel:
    """The best checkpoint of one of this trainer's run directories, with a new classifier when needed.

    ``overrides`` (``model.kwargs`` of the fine-tuning recipe, e.g. ``img_size``) change the architecture's
    keywords; the weights are adapted by the model family's timm checkpoint filter.
    """
    run = RunDirectory(path)
    record = run.read_summary().model
    if record.wrappers:
        raise RecipeError(f"model.init={str(path)!r}: a detector or input-norm ablation run cannot be fine-tuned here")
    architecture = canonical_architecture(record.architecture)
    saved_kwargs = dict(record.kwargs)
    kwargs = {**saved_kwargs, **{k: v for k, v in overrides.items() if k != "num_classes"}}
    model = create_model(architecture, **kwargs)
    weights = run.weights(BEST)  # a regular file inside the run directory
    state = read_weights(weights)
    if kwargs != saved_kwargs:
        state = _adapt_state_dict(model, state)
    load_strict(model, state, f"{architecture} with kwargs {kwargs} ({weights})")
    if kwargs.get("num_classes") != num_classes:
        if not hasattr(model, "reset_classifier"):
            raise RecipeError(
                f"model.init={str(path)!r}: {architecture} has {kwargs.get('num_classes')} classes, the data "
                f"{num_classes}, and the model has no reset_classifier() to replace its head"
            )
        model.reset_classifier(num_classes)
        kwargs["num_classes"] = num_classes
    logger.info("initialized from the best checkpoint of run %s (%s)", path, architecture)
    return BuiltModel(model, architecture, kwargs)


def _from_hub(init: str, num_classes: int) -> BuiltModel:
    """A Hub checkpoint (a folder or a repository) with a new classifier of ``num_classes`` classes. The run
    records the checkpoint's architecture and constructor arguments, so that its own checkpoints are built again
    as they were trained (to evaluate or publish them)."""
    where = parse_source(init)
    config_path, weights_path = fetch_file(where, CONFIG_NAME), fetch_file(where, WEIGHTS_NAME)
    model, config = load_checkpoint(config_path, weights_path, str(where))
    replace_head(model, num_classes)
    spec = ArchitectureSpec.from_config(config)
    logger.info("fine-tuning %s from %s with a new %d-class classifier", spec.qualified_name, where, num_classes)
    return BuiltModel(model, spec.qualified_name, {**spec.model_args, "num_classes": num_classes})


def _channels(architecture: str, recipe: Recipe) -> dict[str, Any]:
    """``in_chans`` for a data set whose images do not have 3 channels (timm's default): every timm model takes
    it; a torchvision builder has no such argument, so it is refused with the fix."""
    channels = recipe.data.info.channels
    if channels == 3:
        return {}
    if architecture.startswith("timm:"):
        return {"in_chans": channels}
    raise RecipeError(
        f"{recipe.data.dataset} has {channels}-channel images, but {architecture} is built for 3; use a timm "
        f"architecture (they take in_chans={channels}) or a data set of color images"
    )


def build_model(recipe: Recipe, num_classes: int) -> BuiltModel:
    """The (unpatched) model of ``recipe`` for a data set of ``num_classes`` classes."""
    config = recipe.model
    if config.init is not None:
        if RunDirectory.holds_run(config.init):
            built = _from_run_directory(Path(config.init), num_classes, config.kwargs)
        elif config.kwargs:
            raise RecipeError(
                f"model.kwargs apply to an architecture or a run directory; model.init={config.init!r} is a hub "
                "checkpoint, which is built as saved (remove model.kwargs)"
            )
        else:
            built = _from_hub(config.init, num_classes)
    elif config.detector == "faster_rcnn":
        architecture = canonical_architecture(config.architecture or "")
        model = build_faster_rcnn_vgg(
            architecture, num_classes, pretrained=config.pretrained, **dataclasses.asdict(config.detection)
        )
        built = BuiltModel(model, architecture, {})
    else:
        architecture = canonical_architecture(config.architecture or "")
        kwargs = {**_channels(architecture, recipe), **config.kwargs}
        kwargs.setdefault("num_classes", num_classes)
        if kwargs["num_classes"] != num_classes:
            raise RecipeError(
                f"model.kwargs.num_classes={kwargs['num_classes']} but the data set has {num_classes} classes"
            )
        try:
            model = create_model(architecture, pretrained=config.pretrained, **kwargs)
        except TypeError as error:
            raise RecipeError(f"model.kwargs {kwargs} do not fit {architecture}: {error}") from None
        built = BuiltModel(model, architecture, kwargs)
    apply_input_norm(built.model, config.input_norm)
    return built


def first_layer_names(model: nn.Module, recipe: Recipe) -> list[str]:
    """The first layer(s): the recipe's ``target``, else tract_hub's registry."""
    if recipe.target is not None:
        return [recipe.target] if isinstance(recipe.target, str) else list(recipe.target)
    return [layer.name for layer in locate(model)]


def install_tract(model: nn.Module, recipe: Recipe, *, exact: bool) -> list[str]:
    """Patch ``model`` in place with ``recipe.lam`` (nothing for a vanilla recipe); returns the first layers."""
    if recipe.lam is None:
        try:
            return first_layer_names(model, recipe)
        except TrActError as error:
            if recipe.optimizer.first_layer is not None:
                raise
            logger.warning("vanilla run: the first layer is not recorded (%s)", error)
            return []
    patch(model, recipe.lam, target=recipe.target, exact=exact)
    return [layer.name for layer in patched_layers(model)]

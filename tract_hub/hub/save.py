"""``save_pretrained``: a model as ``model.safetensors`` + timm's ``config.json`` + a model card, written atomically.

Example:
    >>> import tempfile, tract_hub
    >>> from tract_hub.models import create_model
    >>> model = create_model("timm:test_resnet", num_classes=3)
    >>> path = tract_hub.save_pretrained(model, tempfile.mkdtemp() + "/ckpt", metadata={"lam": 0.1})
    >>> sorted(p.name for p in path.iterdir())
    ['README.md', 'config.json', 'model.safetensors']
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import InvalidArgumentError
from .architecture import ArchitectureSpec, describe_difference, describe_model, expected_shapes, shapes_of
from .atomic import atomic_directory
from .card import CardInfo, RunResults, base_model_from_recipe, render_card
from .heads import head_num_classes
from .layout import CARD_NAME, CONFIG_NAME, METADATA_KEY, WEIGHTS_NAME, fsync_file, write_json
from .metadata import build_metadata, recorded_lam
from .weights import write_weights

logger = logging.getLogger(__name__)


def _timm_config(model: nn.Module, spec: ArchitectureSpec, path: Path, block: dict[str, Any]) -> dict[str, Any]:
    """timm's own ``config.json`` (``save_config_for_hf``) with the ``"tract_hub"`` block as one extra key."""
    from timm.models._hub import save_config_for_hf

    try:
        save_config_for_hf(model, str(path), model_config={METADATA_KEY: block}, model_args=spec.model_args or None)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"timm cannot describe this {spec.name} in config.json: {error}. Give JSON-serializable "
            "model_kwargs= for the constructor arguments it names"
        ) from error
    return json.loads(path.read_text(encoding="utf-8"))


def _torchvision_config(model: nn.Module, spec: ArchitectureSpec, path: Path, block: dict[str, Any]) -> dict[str, Any]:
    """The same files for a torchvision model: its builder, its keyword arguments and the block."""
    config: dict[str, Any] = {"architecture": spec.qualified_name, "model_args": spec.model_args, METADATA_KEY: block}
    num_classes = head_num_classes(model)
    if num_classes is not None:
        config["num_classes"] = num_classes
    write_json(path, config)
    return config


def _check_rebuilds(model: nn.Module, config: dict[str, Any]) -> None:
    """Refuse to publish a config that would not build a model with exactly this state_dict's keys and shapes."""
    spec = ArchitectureSpec.from_config(config)
    expected = expected_shapes(spec)
    if expected is None:
        logger.warning("could not rebuild %s on the meta device to check the saved config", spec.qualified_name)
        return
    difference = describe_difference(expected, shapes_of(model.state_dict()))
    if difference:
        raise InvalidArgumentError(
            f"config.json would build {spec.qualified_name} with model_args {spec.model_args}, which does not "
            f"match this model: {difference}. Pass architecture= and model_kwargs= with the arguments the model "
            "was built with"
        )


def write_checkpoint(
    model: nn.Module, spec: ArchitectureSpec, directory: Path, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """Write ``model.safetensors`` and ``config.json`` into an (empty, staging) ``directory``; returns the config."""
    weights = write_weights(model, directory / WEIGHTS_NAME)
    block = build_metadata(model, spec, weights, metadata)
    config_path = directory / CONFIG_NAME
    writer = _timm_config if spec.source == "timm" else _torchvision_config
    config = writer(model, spec, config_path, block)
    _check_rebuilds(model, config)
    fsync_file(config_path)
    return config


def card_info(config: dict[str, Any], *, name: str, repo_id: str | None = None) -> CardInfo:
    """What a card says about a checkpoint, read from its ``config.json``."""
    block = config[METADATA_KEY]
    recipe = block.get("recipe")
    lam = recorded_lam(block)
    return CardInfo(
        name=name,
        spec=ArchitectureSpec.from_config(config),
        lam=lam,
        first_layers=list(block.get("first_layers") or []),
        exact=bool(block.get("exact")),
        dataset=block.get("dataset"),
        num_classes=config.get("num_classes"),
        recipe=recipe,
        recipe_name=block.get("recipe_name"),
        results=RunResults(
            lam=lam,
            epochs=block.get("epochs"),
            final=dict(block.get("metrics") or {}),
            best=dict(block.get("best") or {}),
        ),
        base_model=block.get("base_model") or base_model_from_recipe(recipe),
        license=block.get("license") or "mit",
        repo_id=repo_id,
    )


def save_pretrained(
    model: nn.Module,
    directory: str | os.PathLike[str],
    *,
    architecture: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    card: bool = True,
    overwrite: bool = False,
    repo_id: str | None = None,
) -> Path:
    """Save ``model`` in the Hub format timm reads: ``model.safetensors``, ``config.json``, ``README.md``.

    Args:
        model: a timm model, a torchvision model, patched or not (the weights are the same either way).
        directory: the checkpoint directory; written atomically (a temporary sibling renamed into place).
        architecture: ``"timm:<arch>"`` or ``"torchvision:<builder>"``; by default read from timm's
            ``pretrained_cfg`` or identified among torchvision's builders.
        model_kwargs: the constructor's keyword arguments (timm records them itself when the model was built
            by ``timm.create_model``).
        metadata: recipe, metrics (``"metrics"``), ``"dataset"``, ``"lam"`` / ``"first_layers"`` for an unpatched
            model, ``"license"``, ``"base_model"``, ...: merged into config.json's ``"tract_hub"`` block.
        card: write the model card ``README.md`` (only when the directory has none).
        overwrite: replace the checkpoint files of an existing non-empty directory (other files are kept).
        repo_id: the Hub repository the card's usage snippets name.

    Returns the checkpoint directory. The model itself is not changed.

    Example:
        >>> import tempfile, tract_hub
        >>> from tract_hub.models import create_model
        >>> model = tract_hub.patch(create_model("timm:test_resnet"), lam=0.1, target="conv1.0")
        >>> path = tract_hub.save_pretrained(model, tempfile.mkdtemp() + "/ckpt")
        >>> tract_hub.from_pretrained(path).num_classes
        1000
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"save_pretrained(model, ...) needs an nn.Module as model, got {type(model)!r}")
    spec = describe_model(model, architecture, model_kwargs)
    target = Path(directory)
    has_card = (target / CARD_NAME).is_file()
    with atomic_directory(target, overwrite=overwrite) as staging:
        config = write_checkpoint(model, spec, staging, metadata)
        if card and not has_card:
            name = repo_id.split("/")[-1] if repo_id else target.absolute().name
            (staging / CARD_NAME).write_text(render_card(card_info(config, name=name, repo_id=repo_id)), "utf-8")
    if card and has_card:
        logger.info("kept the existing %s of %s (cards are written only when missing)", CARD_NAME, target)
    logger.info("saved %s (%s) to %s", spec.qualified_name, WEIGHTS_NAME, target)
    return target

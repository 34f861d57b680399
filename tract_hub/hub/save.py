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

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artifacts.checkpoint_files import CARD_NAME, WEIGHTS_NAME
from ..artifacts.files import atomic_directory
from ..artifacts.metadata import TrActMetadata
from ..errors import InvalidArgumentError
from ..pretrained import write_checkpoint
from .card import checkpoint_card
from .identify import describe_model

logger = logging.getLogger(__name__)


def save_pretrained(
    model: nn.Module,
    directory: str | os.PathLike[str],
    *,
    architecture: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    metadata: TrActMetadata | dict[str, Any] | None = None,
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
        metadata: a :class:`~tract_hub.artifacts.TrActMetadata`, or a dict of its keys: ``"recipe"``,
            ``"metrics"``, ``"dataset"``, ``"lam"`` / ``"first_layers"`` for an unpatched model, ``"license"``,
            ``"base_model"``, ...; an unknown key is refused with the closest valid key named.
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
    needed = sum(t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor))
    with atomic_directory(target, overwrite=overwrite, needed_bytes=needed) as staging:
        config = write_checkpoint(model, spec, staging, metadata)
        if card and not has_card:
            name = repo_id.split("/")[-1] if repo_id else target.absolute().name
            (staging / CARD_NAME).write_text(checkpoint_card(config, name=name, repo_id=repo_id), "utf-8")
    if card and has_card:
        logger.info("kept the existing %s of %s (cards are written only when missing)", CARD_NAME, target)
    logger.info("saved %s (%s) to %s", spec.qualified_name, WEIGHTS_NAME, target)
    return target

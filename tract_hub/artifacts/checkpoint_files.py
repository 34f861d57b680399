"""A Hub-format checkpoint directory as files (timm's layout), and the bounded reader of its ``config.json``.

Building a model from these files, or these files from a model, is :mod:`tract_hub.pretrained`'s; this module
only names them and reads the config as untrusted JSON.

Example:
    >>> CONFIG_NAME, WEIGHTS_NAME
    ('config.json', 'model.safetensors')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointIntegrityError
from .reading import parse_json, read_confined_text

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
CURVES_NAME = "training_curves.png"

#: Weight files that a checkpoint may carry but that tract_hub never reads (they unpickle).
PICKLE_WEIGHT_NAMES = ("pytorch_model.bin", "pytorch_model.pth", "model.pth", "model.pt", "model.bin")

#: The longest config.json read (timm's are about 1 kB; with a recipe and metrics, a few kB).
MAX_CONFIG_BYTES = 4 * 2**20


def read_config(path: Path) -> dict[str, Any]:
    """``config.json`` as a dict: a regular file in its folder, bounded in size and depth, holding a JSON object;
    anything else raises :class:`CheckpointIntegrityError`.

    Example:
        >>> import json, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / CONFIG_NAME
        >>> _ = path.write_text(json.dumps({"architecture": "resnet18"}))
        >>> read_config(path)
        {'architecture': 'resnet18'}
    """
    error = CheckpointIntegrityError
    text = read_confined_text(path, error=error, limit=MAX_CONFIG_BYTES)
    config = parse_json(text, repr(str(path)), error=error, limit=MAX_CONFIG_BYTES)
    if not isinstance(config, dict):
        raise CheckpointIntegrityError(f"{str(path)!r} holds a JSON {type(config).__name__}, not an object")
    return config

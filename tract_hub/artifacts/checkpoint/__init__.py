"""A Hub-format checkpoint directory: ``model.safetensors`` + timm's ``config.json`` (with TrAct's metadata block).

Written by :mod:`tract_hub.hub` (``save_pretrained``, ``push_to_hub``), read by the hub and by training (a
recipe's ``model.init``). One module per step: where the files come from (``fetch``), which architecture they
describe (``spec``), the weights (``weights``), the classifier head (``heads``), reading (``read``) and
writing (``write``).

Example:
    >>> from tract_hub.artifacts.checkpoint import parse_source
    >>> parse_source("hf-hub:org/name").kind
    'hub'
"""

from .fetch import CheckpointSource, fetch_file, parse_source
from .layout import CARD_NAME, CONFIG_NAME, CURVES_NAME, WEIGHTS_NAME
from .read import from_pretrained, load_checkpoint, read_config
from .spec import ArchitectureSpec
from .write import write_checkpoint

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "CURVES_NAME",
    "WEIGHTS_NAME",
    "ArchitectureSpec",
    "CheckpointSource",
    "fetch_file",
    "from_pretrained",
    "load_checkpoint",
    "parse_source",
    "read_config",
    "write_checkpoint",
]

"""A model and its Hub-format checkpoint, both ways: ``from_pretrained`` and the writer behind ``save_pretrained``.

The files themselves (their names, the safetensors weights, TrAct's metadata block, the bounded config reader)
are formats of :mod:`tract_hub.artifacts`, which knows no model. This room builds models from them and writes
them from models, for the hub (save, push, pull) and for training (a recipe's ``model.init``, ``tract-hub
eval``). One module per step: where the files come from (``fetch``: a local directory or the Hub), which
architecture they describe and building it (``spec``), the classifier head (``heads``), loading strictly and
patching for fine-tuning (``load``), and writing (``write``).

Example:
    >>> from tract_hub.pretrained import parse_source
    >>> parse_source("hf-hub:org/name").kind
    'hub'
"""

from .fetch import CheckpointSource, fetch_file, parse_source
from .load import build_and_load, from_pretrained, load_checkpoint
from .spec import ArchitectureSpec
from .write import write_checkpoint

__all__ = [
    "ArchitectureSpec",
    "CheckpointSource",
    "build_and_load",
    "fetch_file",
    "from_pretrained",
    "load_checkpoint",
    "parse_source",
    "write_checkpoint",
]

"""The files of a Hub-format checkpoint directory (timm's layout).

Example:
    >>> CONFIG_NAME, WEIGHTS_NAME
    ('config.json', 'model.safetensors')
"""

from __future__ import annotations

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
CURVES_NAME = "training_curves.png"

#: Weight files that a checkpoint may carry but that tract_hub never reads (they unpickle).
PICKLE_WEIGHT_NAMES = ("pytorch_model.bin", "pytorch_model.pth", "model.pth", "model.pt", "model.bin")

"""Checkpoints of a run: the model as safetensors, the rest of the training state beside it, written atomically.

``checkpoints/<name>/model.safetensors`` holds the model's ``state_dict`` (TrAct never changes its keys),
``checkpoints/<name>/model_ema.safetensors`` the EMA of the weights when the run keeps one (``train.ema``), and
``checkpoints/<name>/training_state.pt`` the optimizer(s), scheduler(s), GradScaler, epoch, step and RNG states,
saved with plain tensors and containers only so that ``torch.load(weights_only=True)`` reads it.

A checkpoint directory is written with :func:`tract_hub.artifacts.files.atomic_directory`: a staging sibling is
renamed into place and the previous checkpoint is kept under ``.<name>.old`` until the new one is in place, so an
interruption at any moment leaves a complete one.

Example:
    >>> import torch, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "last"
    >>> save_checkpoint(folder, torch.nn.Linear(2, 2).state_dict(), {"epoch": 1})
    >>> sorted(p.name for p in folder.iterdir())
    ['model.safetensors', 'training_state.pt']
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.checkpoint.weights import read_weights, save_state_dict
from ..artifacts.files import atomic_directory, previous_copy
from ..artifacts.run_dir import EMA_WEIGHTS_FILE, TRAINING_STATE_FILE, WEIGHTS_FILE
from ..errors import CheckpointIntegrityError

logger = logging.getLogger(__name__)


def save_checkpoint(
    directory: str | Path,
    model_state: dict[str, torch.Tensor],
    training_state: dict,
    ema_state: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write ``model.safetensors``, ``training_state.pt`` (and, given ``ema_state``, ``model_ema.safetensors``)
    into ``directory``, atomically."""
    with atomic_directory(directory, overwrite=True, keep=False) as staging:
        save_state_dict(model_state, staging / WEIGHTS_FILE)
        if ema_state is not None:
            save_state_dict(ema_state, staging / EMA_WEIGHTS_FILE)
        torch.save(training_state, staging / TRAINING_STATE_FILE)


def checkpoint_directory(directory: str | Path) -> Path | None:
    """``directory`` if it holds a complete checkpoint, else the previous one an interrupted save left, else None."""
    directory = Path(directory)
    for candidate in (directory, previous_copy(directory)):
        if (candidate / WEIGHTS_FILE).is_file() and (candidate / TRAINING_STATE_FILE).is_file():
            if candidate != directory:
                logger.warning("using %s: the save of %s was interrupted", candidate, directory)
            return candidate
    return None


def load_model_state(directory: str | Path) -> dict[str, torch.Tensor]:
    return read_weights(Path(directory) / WEIGHTS_FILE)


def load_ema_state(directory: str | Path) -> dict[str, torch.Tensor] | None:
    """The EMA weights of a checkpoint, None if it has none."""
    path = Path(directory) / EMA_WEIGHTS_FILE
    return read_weights(path) if path.is_file() else None


def load_training_state(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / TRAINING_STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointIntegrityError(
            f"{path} cannot be read with torch.load(weights_only=True) ({type(error).__name__}: {error})"
        ) from None


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states as tensors and plain values."""
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    internal, version, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

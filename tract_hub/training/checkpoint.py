"""Checkpoints of a run: the model as safetensors, the rest of the training state beside it, written atomically.

``checkpoints/<name>/model.safetensors`` holds the model's ``state_dict`` (TrAct never changes its keys),
``checkpoints/<name>/model_ema.safetensors`` the EMA of the weights when the run keeps one (``train.ema``), and
``checkpoints/<name>/training_state.pt`` the optimizer(s), scheduler(s), GradScaler, epoch, step and RNG states,
saved with plain tensors and containers only so that ``torch.load(weights_only=True)`` reads it.

A checkpoint directory is written with :func:`tract_hub.artifacts.files.atomic_directory`, whose rotation
(:mod:`tract_hub.artifacts.rotation`) keeps the newest complete checkpoint whatever the sequence of kills:
:func:`checkpoint_directory` finds it, and the next save finishes or removes what an interrupted one left.
A save that runs out of space raises :class:`~tract_hub.errors.DiskFullError` naming the folder and the space
it needs; the previous checkpoint is left as it was.

Example:
    >>> import torch, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "last"
    >>> save_checkpoint(folder, torch.nn.Linear(2, 2).state_dict(), {"epoch": 1})
    >>> sorted(p.name for p in folder.iterdir())
    ['model.safetensors', 'training_state.pt']
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.files import atomic_directory
from ..artifacts.reading import confined_file
from ..artifacts.rotation import new_copy, previous_copy
from ..artifacts.run_dir import EMA_WEIGHTS_FILE, TRAINING_STATE_FILE, WEIGHTS_FILE
from ..artifacts.weights import read_weights, save_state_dict
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
    needed = tensor_bytes(model_state) + tensor_bytes(training_state) + tensor_bytes(ema_state)
    with atomic_directory(directory, overwrite=True, keep=False, needed_bytes=needed) as staging:
        save_state_dict(model_state, staging / WEIGHTS_FILE)
        if ema_state is not None:
            save_state_dict(ema_state, staging / EMA_WEIGHTS_FILE)
        torch.save(training_state, staging / TRAINING_STATE_FILE)


def tensor_bytes(state: Any) -> int:
    """Bytes of the tensors in a (nested) state: what writing it needs, about."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(tensor_bytes(value) for value in state.values())
    if isinstance(state, list | tuple):
        return sum(tensor_bytes(value) for value in state)
    return 0


def checkpoint_directory(directory: str | Path) -> Path | None:
    """The newest complete checkpoint of ``directory`` (itself, or what an interrupted save left), else None.

    Reads only: under torchrun every rank calls it; rank 0's next save finishes the interrupted rotation.
    """
    directory = Path(directory).absolute()
    for candidate in (new_copy(directory), directory, previous_copy(directory)):
        if (candidate / WEIGHTS_FILE).is_file() and (candidate / TRAINING_STATE_FILE).is_file():
            if candidate != directory:
                logger.warning("using %s: the save of %s was interrupted", candidate, directory)
            return candidate
    return None


def load_model_state(directory: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint directory (a regular file inside it, never unpickled)."""
    return read_weights(confined_file(Path(directory) / WEIGHTS_FILE, directory, error=CheckpointIntegrityError))


def load_ema_state(directory: str | Path) -> dict[str, torch.Tensor] | None:
    """The EMA weights of a checkpoint (a regular file inside it), None if it has none."""
    path = Path(directory) / EMA_WEIGHTS_FILE
    if not os.path.lexists(path):
        return None
    return read_weights(confined_file(path, directory, error=CheckpointIntegrityError))


def load_training_state(directory: str | Path) -> dict[str, Any]:
    """The training state of a checkpoint directory (``torch.load(weights_only=True)``: no code is unpickled)."""
    path = confined_file(Path(directory) / TRAINING_STATE_FILE, directory, error=CheckpointIntegrityError)
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

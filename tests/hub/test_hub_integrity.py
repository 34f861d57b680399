"""Every damaged or unsafe checkpoint is refused with the project's own error, never half-loaded or unpickled."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import tract_hub
from tract_hub.artifacts.files import sha256_file
from tract_hub.artifacts.metadata import METADATA_KEY
from tract_hub.errors import CheckpointIntegrityError, HubError, TrActError, UnknownArchitectureError


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def _write_config(path: Path, config: dict) -> None:
    (path / "config.json").write_text(json.dumps(config))


def _edit_config(**changes: object) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        _write_config(path, {**_config(path), **changes})

    return edit


def _rewrite_weights(change: Callable[[dict], dict]) -> Callable[[Path], None]:
    """Replace the weights by a changed state_dict and record the new file's hash (so only the keys are wrong)."""

    def edit(path: Path) -> None:
        weights = path / "model.safetensors"
        save_file(change(load_file(weights)), weights)
        config = _config(path)
        config[METADATA_KEY].update(weights_sha256=sha256_file(weights), weights_bytes=weights.stat().st_size)
        _write_config(path, config)

    return edit


def _truncate(path: Path) -> None:
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _flip_byte(path: Path) -> None:
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))


def _forget_hash_then(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """A plain timm checkpoint (no tract_hub block, so no recorded hash) that is then damaged."""

    def edit(path: Path) -> None:
        config = _config(path)
        config.pop(METADATA_KEY)
        _write_config(path, config)
        damage(path)

    return edit


def _record_wrong_hash(path: Path) -> None:
    config = _config(path)
    config[METADATA_KEY]["weights_sha256"] = "0" * 64
    _write_config(path, config)


def _garbage_header(path: Path) -> None:
    (path / "model.safetensors").write_bytes(b"\xff" * 64)


def _remove(name: str) -> Callable[[Path], None]:
    return lambda path: (path / name).unlink()


def _pickle_weights_only(path: Path) -> None:
    """Replace the safetensors by a pickle that would create a marker file if anything unpickled it."""
    (path / "model.safetensors").unlink()

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (path / "UNPICKLED",))

    (path / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))


def _drop_first_key(state: dict) -> dict:
    return dict(list(state.items())[1:])


def _add_key(state: dict) -> dict:
    return {**state, "extra.weight": torch.zeros(2)}


def _wrong_head_shape(state: dict) -> dict:
    return {**state, "fc.weight": torch.zeros(5, state["fc.weight"].shape[1]), "fc.bias": torch.zeros(5)}


# (case, damage, expected error, message fragment)
CASES = [
    ("truncated weights", _truncate, CheckpointIntegrityError, "truncated"),
    ("flipped byte", _flip_byte, CheckpointIntegrityError, "sha256"),
    ("truncated, no hash", _forget_hash_then(_truncate), CheckpointIntegrityError, "not a readable safetensors"),
    ("garbage header", _forget_hash_then(_garbage_header), CheckpointIntegrityError, "not a readable safetensors"),
    ("sha256 mismatch", _record_wrong_hash, CheckpointIntegrityError, "sha256"),
    ("missing key", _rewrite_weights(_drop_first_key), CheckpointIntegrityError, "1 missing key"),
    ("unexpected key", _rewrite_weights(_add_key), CheckpointIntegrityError, "1 unexpected key"),
    ("shape mismatch", _rewrite_weights(_wrong_head_shape), CheckpointIntegrityError, "shape mismatch"),
    (
        "config disagrees",
        _edit_config(num_classes=5, model_args={"num_classes": 5}),
        CheckpointIntegrityError,
        "shape mismatch",
    ),
    ("unknown architecture", _edit_config(architecture="resnet_nonexistent"), UnknownArchitectureError, "never"),
    ("import path", _edit_config(architecture="os.system"), UnknownArchitectureError, "import paths"),
    ("class path", _edit_config(architecture="torch.nn.Linear"), UnknownArchitectureError, "import paths"),
    ("unknown builder", _edit_config(architecture="torchvision:evil"), UnknownArchitectureError, "torchvision"),
    ("bad prefix", _edit_config(architecture="pickle:loads"), UnknownArchitectureError, "import paths"),
    ("callable object", _edit_config(architecture={"call": "os.system"}), UnknownArchitectureError, "expected"),
    ("loads a file", _edit_config(model_args={"checkpoint_path": "x.pth"}), CheckpointIntegrityError, "checkpoint"),
    ("downloads", _edit_config(model_args={"pretrained": True}), CheckpointIntegrityError, "pretrained"),
    ("model_args list", _edit_config(model_args=[1]), CheckpointIntegrityError, "model_args"),
    ("newer format", _edit_config(tract_hub={"format_version": 99}), HubError, "Upgrade tract_hub"),
    ("config not json", lambda p: (p / "config.json").write_text("{"), CheckpointIntegrityError, "not valid JSON"),
    ("config a list", lambda p: (p / "config.json").write_text("[]"), CheckpointIntegrityError, "not an object"),
    ("no config", _remove("config.json"), CheckpointIntegrityError, "config.json"),
    ("no weights", _remove("model.safetensors"), CheckpointIntegrityError, "model.safetensors"),
    ("pickle weights only", _pickle_weights_only, CheckpointIntegrityError, "never unpickles"),
]


@pytest.mark.parametrize(("case", "damage", "error", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_damaged_checkpoint_is_refused(
    case: str, damage: Callable[[Path], None], error: type, fragment: str, checkpoint_copy: Path
) -> None:
    damage(checkpoint_copy)
    with pytest.raises(error, match=fragment) as raised:
        tract_hub.from_pretrained(checkpoint_copy)
    assert isinstance(raised.value, TrActError)
    assert isinstance(raised.value, OSError)  # HubError is an OSError for callers that do not know tract_hub
    assert not (checkpoint_copy / "UNPICKLED").exists()


def test_missing_directory_is_a_hub_error(tmp_path: Path) -> None:
    with pytest.raises(HubError, match="neither an existing directory nor a Hub repository"):
        tract_hub.from_pretrained(str(tmp_path / "no" / "such" / "dir"))

"""Weights and configs that do not fit are refused from the file's header and config.json, before any allocation.

Each case edits a copy of a saved checkpoint (the recorded size and sha256 are updated, so only the intended
fault remains) and asserts the project's error naming the key. ``no_real_build`` makes building the real model
fail the test, which proves that the refusal came from the header and the model built on the meta device.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import tract_hub
from tract_hub.artifacts.files import sha256_file
from tract_hub.artifacts.metadata import METADATA_KEY
from tract_hub.errors import CheckpointIntegrityError, InvalidArgumentError
from tract_hub.pretrained import load as checkpoint_load


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def _write_config(path: Path, config: dict) -> None:
    (path / "config.json").write_text(json.dumps(config))


def _retype(key: str, make: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[Path], None]:
    """Replace one tensor and record the new file's size and hash, so that only that tensor is wrong."""

    def damage(path: Path) -> None:
        weights = path / "model.safetensors"
        state = load_file(weights)
        state[key] = make(state[key])
        save_file(state, weights)
        config = _config(path)
        config[METADATA_KEY].update(weights_sha256=sha256_file(weights), weights_bytes=weights.stat().st_size)
        _write_config(path, config)

    return damage


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        config = _config(path)
        change(config)
        _write_config(path, config)

    return damage


def _nested(depth: int) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        text = (path / "config.json").read_text()
        (path / "config.json").write_text(text[:-2] + ', "deep": ' + "[" * depth + "]" * depth + "}\n")

    return damage


def _classes(count: int) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        config["num_classes"] = count
        config["model_args"]["num_classes"] = count

    return change


@pytest.fixture
def no_real_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the real model was built before the refusal")

    monkeypatch.setattr(checkpoint_load, "build", refuse)


# (case, damage, the fragment of the refusal)
CASES = [
    ("int8 weight", _retype("conv1.0.weight", lambda t: t.to(torch.int8)), "conv1.0.weight int8 vs float32"),
    ("bool bias", _retype("fc.bias", lambda t: t > 0), "fc.bias bool vs float32"),
    ("float16 weight", _retype("fc.weight", lambda t: t.half()), "fc.weight float16 vs float32"),
    (
        "fractional batch count",
        _retype("bn1.num_batches_tracked", lambda t: torch.tensor(3.7)),
        "bn1.num_batches_tracked float32 vs int64",
    ),
    ("3M classes, 3-class weights", _edit(_classes(3_000_000)), "num_classes=3,000,000 is larger than the weights"),
    ("1000 classes, 3-class weights", _edit(_classes(1000)), r"fc.weight \(3, 96\) vs \(1000, 96\)"),
    ("huge depth", _edit(lambda c: c["model_args"].update(depth=10**9)), "model_args.depth=1,000,000,000"),
    ("nested 100,000 deep", _nested(100_000), "nested more than 64 levels deep"),
    ("num_classes contradicts", _edit(lambda c: c.update(num_classes=7)), "num_classes=7 but model_args.num_classes=3"),
    ("num_classes a string", _edit(lambda c: c.update(num_classes="3")), "num_classes is '3'"),
    ("drop_rate a string", _edit(lambda c: c["model_args"].update(drop_rate="x")), "model_args.drop_rate='x'"),
    (
        "global_pool a number",
        _edit(lambda c: c["model_args"].update(global_pool=1)),
        r"cannot build .*'global_pool': 1",
    ),
    ("mean a string", _edit(lambda c: c["pretrained_cfg"].update(mean="x")), "pretrained_cfg.mean='x'"),
    ("input size of 2", _edit(lambda c: c["pretrained_cfg"].update(input_size=[3, 32])), "pretrained_cfg.input_size"),
]


@pytest.mark.parametrize(("case", "damage", "fragment"), CASES, ids=[case[0] for case in CASES])
def test_refused_before_the_model_is_built(
    case: str, damage: Callable[[Path], None], fragment: str, checkpoint_copy: Path, no_real_build: None
) -> None:
    damage(checkpoint_copy)
    with pytest.raises(CheckpointIntegrityError, match=fragment):
        tract_hub.from_pretrained(checkpoint_copy)


def test_upper_case_sha256_is_the_same_digest(checkpoint_copy: Path) -> None:
    config = _config(checkpoint_copy)
    config[METADATA_KEY]["weights_sha256"] = config[METADATA_KEY]["weights_sha256"].upper()
    _write_config(checkpoint_copy, config)
    assert tract_hub.from_pretrained(checkpoint_copy).num_classes == 3


def test_absurd_num_classes_argument_is_refused_before_allocating(saved_timm: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"num_classes=1,000,000,000,000: .* GiB, more than"):
        tract_hub.from_pretrained(saved_timm, num_classes=10**12)
    assert tract_hub.from_pretrained(saved_timm, num_classes=7).num_classes == 7


def test_the_checks_accept_every_saved_checkpoint(saved_timm: Path) -> None:
    """The same checks pass for what save_pretrained writes (timm and torchvision)."""
    import torchvision

    assert tract_hub.from_pretrained(saved_timm).num_classes == 3
    model = torchvision.models.squeezenet1_1(num_classes=4)
    path = tract_hub.save_pretrained(model, saved_timm.parent / "squeezenet", architecture="torchvision:squeezenet1_1")
    assert type(tract_hub.from_pretrained(path)).__name__ == "SqueezeNet"


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("half model", "77 dtype mismatch.*conv1.0.weight float16 vs float32"),
        ("argument of the wrong kind", "model_args.drop_rate='x'"),
    ],
)
def test_saving_what_would_not_load_is_refused(case: str, fragment: str, tmp_path: Path) -> None:
    from tract_hub.models import create_model

    if case == "half model":
        model, options = create_model("timm:test_resnet", num_classes=3).half(), {}
    else:
        model = create_model("timm:test_resnet", num_classes=3)
        options = {"architecture": "timm:test_resnet", "model_kwargs": {"num_classes": 3, "drop_rate": "x"}}
    with pytest.raises(InvalidArgumentError, match=fragment):
        tract_hub.save_pretrained(model, tmp_path / "c", **options)
    assert not (tmp_path / "c").exists()

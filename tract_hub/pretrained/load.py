"""Loading a checkpoint: ``from_pretrained`` builds, verifies, loads strictly, optionally patches and re-heads.

Loading never unpickles (safetensors only), builds only timm architectures and torchvision builders named in
``config.json`` (through :func:`tract_hub.models.create_model`, never an import path), checks the weights' size
and sha256, then compares the file's header (every key's dtype and shape) with the model built on the meta
device before anything real is allocated, and loads every key with its exact shape and dtype. Any failure
raises a :class:`HubError` subclass; no half-loaded model is ever returned.

Example:
    >>> import tempfile, tract_hub
    >>> from tract_hub.models import create_model
    >>> path = tract_hub.save_pretrained(create_model("timm:test_resnet", num_classes=3), tempfile.mkdtemp() + "/c")
    >>> model = tract_hub.from_pretrained(path, patched=True, lam=0.1, num_classes=5)
    >>> tract_hub.is_patched(model), model.num_classes
    (True, 5)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Any

from torch import nn

from ..artifacts.checkpoint_files import CONFIG_NAME, WEIGHTS_NAME, read_config
from ..artifacts.metadata import TrActMetadata, read_metadata
from ..artifacts.weights import check_tensors, load_strict, read_header, read_weights, specs_of, verify_weights
from ..errors import CheckpointIntegrityError, InvalidArgumentError
from ..patching.api import check_lam
from .fetch import fetch_file, parse_source
from .heads import replace_head
from .spec import ArchitectureSpec, build, build_on_meta, check_model_args, check_sizes

logger = logging.getLogger(__name__)

#: pretrained_cfg fields that point timm at weights to fetch; a loaded config never passes them on.
_WEIGHT_SOURCE_KEYS = frozenset({"url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "custom_load"})


def _timm_pretrained_cfg(config: dict[str, Any], architecture: str) -> dict[str, Any] | None:
    """The saved ``pretrained_cfg`` (input size, mean, std, ...) that timm itself would attach, known fields only."""
    from timm.models import PretrainedCfg

    saved = config.get("pretrained_cfg")
    if saved is None:
        return None
    if not isinstance(saved, dict):
        raise CheckpointIntegrityError(f"config.json's pretrained_cfg is {type(saved).__name__}, not an object")
    known = {field.name for field in dataclasses.fields(PretrainedCfg)} - _WEIGHT_SOURCE_KEYS
    cfg = {key: value for key, value in saved.items() if key in known}
    for key, value in cfg.items():
        _check_pretrained_field(key, value)
    if isinstance(config.get("num_classes"), int):
        cfg["num_classes"] = config["num_classes"]
    cfg["architecture"] = architecture
    in_chans = (config.get("model_args") or {}).get("in_chans")
    if isinstance(in_chans, int) and isinstance(cfg.get("input_size"), list | tuple) and len(cfg["input_size"]) == 3:
        cfg["input_size"] = (in_chans, *cfg["input_size"][1:])  # as timm's own hf-hub loader repairs it
    return cfg


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _size(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(_is_number(n) and n > 0 for n in value)


def _fraction(value: Any) -> bool:
    return _is_number(value) and 0 < value <= 1


def _layer_names(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(name, str) for name in value))


def _optional(check: Any) -> Any:
    return lambda value: value is None or check(value)


#: pretrained_cfg fields whose values timm computes with, and the check each must pass.
_PRETRAINED_FIELDS = {
    "input_size": _size,
    "test_input_size": _optional(_size),
    "min_input_size": _optional(_size),
    "mean": lambda value: isinstance(value, list) and all(_is_number(n) for n in value),
    "std": lambda value: isinstance(value, list) and all(_is_number(n) and n > 0 for n in value),
    "crop_pct": _fraction,
    "test_crop_pct": _optional(_fraction),
    "interpolation": lambda value: isinstance(value, str),
    "crop_mode": lambda value: isinstance(value, str),
    "fixed_input_size": lambda value: isinstance(value, bool),
    "num_classes": lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
    "first_conv": _optional(_layer_names),
    "classifier": _optional(_layer_names),
}


def _check_pretrained_field(key: str, value: Any) -> None:
    check = _PRETRAINED_FIELDS.get(key)
    if check is not None and not check(value):
        raise CheckpointIntegrityError(
            f"config.json's pretrained_cfg.{key}={value!r} is not a valid value of timm's {key}; fix or remove it"
        )


def load_checkpoint(config_path: Path, weights_path: Path, origin: str) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model a checkpoint's config names and load its verified weights strictly; returns (model, config).

    Order: config (names, arguments, sizes), weights file (size, sha256, header), the model on the meta device
    against the header, and only then the real model and the tensors.
    """
    config = read_config(config_path)
    spec = ArchitectureSpec.from_config(config)
    metadata = read_metadata(config) or TrActMetadata()
    verify_weights(weights_path, metadata.weights_sha256, metadata.weights_bytes)
    check_sizes(config, weights_path.stat().st_size)
    pretrained_cfg = _timm_pretrained_cfg(config, spec.name) if spec.source == "timm" else None
    what = f"{spec.qualified_name} with model_args {spec.model_args} (from {origin})"
    return build_and_load(spec, weights_path, what, pretrained_cfg=pretrained_cfg), config


def build_and_load(
    spec: ArchitectureSpec, weights_path: Path, what: str, *, pretrained_cfg: dict[str, Any] | None = None
) -> nn.Module:
    """``spec`` built with the weights of ``weights_path`` loaded strictly; the file's header is compared with the
    model built on the meta device first, so weights that do not fit allocate nothing."""
    header = read_header(weights_path)
    meta = build_on_meta(spec, pretrained_cfg=pretrained_cfg, strict=True)
    if meta is not None:
        check_model_args(spec, type(meta))
        check_tensors(specs_of(meta.state_dict()), header, what)
    model = build(spec, pretrained_cfg=pretrained_cfg)
    if meta is None:
        check_model_args(spec, type(model))
        check_tensors(specs_of(model.state_dict()), header, what)
    load_strict(model, read_weights(weights_path), what)
    return model


def _check_options(patched: bool, lam: float | None, num_classes: int | None) -> None:
    if lam is not None:
        check_lam(lam)
        if not patched:
            raise InvalidArgumentError(f"lam={lam} without patched=True does nothing; pass patched=True to get TrAct")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise InvalidArgumentError(f"num_classes={num_classes!r} is not a positive integer")


def from_pretrained(
    source: str | os.PathLike[str],
    *,
    revision: str | None = None,
    patched: bool = False,
    lam: float | None = None,
    num_classes: int | None = None,
    exact: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> nn.Module:
    """Load a checkpoint saved by :func:`save_pretrained` (or any timm Hub checkpoint with safetensors weights).

    Args:
        source: a local directory, ``"hf-hub:org/name[@revision]"`` or ``"org/name"``.
        revision: branch, tag or commit on the Hub (or ``@revision`` in ``source``).
        patched: return the model with TrAct installed on its first layer(s) (:func:`tract_hub.patch`), for
            fine-tuning; the recorded first layer(s) are used, else the registry locates them.
        lam: TrAct's lambda with ``patched=True``; by default the checkpoint's recorded lambda, else 0.1.
        num_classes: replace the classifier by a new one with this many classes (after loading the weights).
        exact: with ``patched=True``, TrAct's exact mode (the default, as for :func:`tract_hub.patch`); ``False``:
            the paper's per-backward mode.
        cache_dir: the Hugging Face cache to use (default: ``HF_HUB_CACHE``).
        token: Hub token (default: ``HF_TOKEN`` or the one saved by ``hf auth login``).

    Returns the model, built as its constructor leaves it (training mode), with every weight loaded.

    Example:
        >>> import tempfile, tract_hub
        >>> from tract_hub.models import create_model
        >>> model = create_model("torchvision:squeezenet1_1", num_classes=4)
        >>> path = tract_hub.save_pretrained(model, tempfile.mkdtemp() + "/c", architecture="torchvision:squeezenet1_1")
        >>> type(tract_hub.from_pretrained(path)).__name__
        'SqueezeNet'
    """
    _check_options(patched, lam, num_classes)
    where = parse_source(source, revision)
    config_path = fetch_file(where, CONFIG_NAME, cache_dir=cache_dir, token=token)
    weights_path = fetch_file(where, WEIGHTS_NAME, cache_dir=cache_dir, token=token)
    model, config = load_checkpoint(config_path, weights_path, str(where))
    if num_classes is not None:
        replace_head(model, num_classes)
    if patched:
        _patch_for_fine_tuning(model, read_metadata(config) or TrActMetadata(), lam, exact)
    logger.info("loaded %s from %s", config["architecture"], where)
    return model


def _patch_for_fine_tuning(model: nn.Module, metadata: TrActMetadata, lam: float | None, exact: bool) -> None:
    """Patch the recorded first layer(s) (else the located ones) with ``lam``, else the recorded lambda (per
    layer where the layers differ), else 0.1."""
    from .._api import patch

    layers = list(metadata.first_layers) or None
    if lam is None and metadata.layer_lams:
        logger.info("TrAct lam per layer, as recorded in the checkpoint: %s", metadata.layer_lams)
        for layer, value in metadata.lams().items():
            patch(model, value, target=layer, exact=exact)
        return
    if lam is None:
        lam = metadata.lam if metadata.lam is not None else 0.1
        logger.info("TrAct lam=%s (%s)", lam, "default" if metadata.lam is None else "recorded in the checkpoint")
    patch(model, lam, target=layers, exact=exact)

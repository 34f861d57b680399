"""Writing a checkpoint: ``model.safetensors`` and timm's ``config.json`` with TrAct's metadata block.

TrAct's settings (lambda per first layer, exact mode) are read from the patched layers when the model is
patched; for an unpatched model they come from the caller's metadata, and the first layers from the registry.

Example:
    >>> import pathlib, tempfile
    >>> from tract_hub.models import create_model
    >>> from tract_hub.pretrained.spec import ArchitectureSpec
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> config = write_checkpoint(create_model("timm:test_resnet"), ArchitectureSpec("timm", "test_resnet"), folder,
    ...                           {"lam": 0.1})
    >>> config["tract_hub"]["lam"], config["tract_hub"]["first_layers"]
    (0.1, ['conv1.0'])
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
from pathlib import Path
from typing import Any

from torch import nn

from .._version import __version__
from ..artifacts.checkpoint_files import CONFIG_NAME, WEIGHTS_NAME
from ..artifacts.files import fsync_file, json_text
from ..artifacts.metadata import METADATA_KEY, TrActMetadata
from ..artifacts.publish import WEIGHT_SOURCE_KEYS, data_config, published_recipe
from ..artifacts.weights import describe_difference, specs_of, write_weights
from ..errors import CheckpointIntegrityError, InvalidArgumentError, TrActError
from ..patching import patched_layers
from .heads import head_num_classes
from .spec import ArchitectureSpec, build_on_meta, check_model_args

logger = logging.getLogger(__name__)


def library_versions() -> dict[str, str]:
    """Versions of tract_hub, python and the libraries a checkpoint depends on."""
    import huggingface_hub
    import safetensors
    import timm
    import torch
    import torchvision

    return {
        "huggingface_hub": huggingface_hub.__version__,
        "python": platform.python_version(),
        "safetensors": safetensors.__version__,
        "timm": timm.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "tract_hub": __version__,
    }


def _located_first_layers(model: nn.Module) -> tuple[str, ...]:
    from ..registry import locate

    try:
        return tuple(layer.name for layer in locate(model))
    except TrActError as error:
        logger.warning("could not locate the first layer of %s for the checkpoint's metadata: %s", type(model), error)
        return ()


def _tract_settings(model: nn.Module, given: TrActMetadata, explicit: set[str]) -> dict[str, Any]:
    """lam, layer_lams, exact and first_layers: from the patched layers if the model is patched, else given."""
    patched = patched_layers(model)
    if not patched:
        layers = given.first_layers if "first_layers" in explicit else _located_first_layers(model)
        return {"first_layers": layers}
    lams = {layer.name: layer.lam for layer in patched}
    one = len(set(lams.values())) == 1
    settings = {
        "lam": next(iter(lams.values())) if one else None,
        "layer_lams": {} if one else lams,
        "exact": patched[0].exact,
        "first_layers": tuple(lams),
    }
    for key in sorted(explicit & set(settings)):
        if getattr(given, key) != settings[key]:
            raise InvalidArgumentError(
                f"metadata[{key!r}]={getattr(given, key)!r} contradicts the patched model ({key}={settings[key]!r}); "
                "leave it out (it is read from the patched layers) or patch the model accordingly"
            )
    return settings


def build_metadata(
    model: nn.Module, spec: ArchitectureSpec, weights: dict[str, Any], metadata: TrActMetadata | dict | None
) -> TrActMetadata:
    """The ``"tract_hub"`` block for ``model`` saved as ``spec`` with weights ``{"sha256", "bytes"}``."""
    if isinstance(metadata, TrActMetadata):
        given = metadata
        explicit = {f.name for f in dataclasses.fields(given) if getattr(given, f.name) != f.default}
    else:
        given = TrActMetadata.from_user(metadata if metadata is not None else {})
        explicit = set(metadata or {}) | ({"layer_lams"} if isinstance((metadata or {}).get("lam"), dict) else set())
    return dataclasses.replace(
        given,
        **_tract_settings(model, given, explicit),
        recipe=published_recipe(given.recipe),
        architecture=spec.qualified_name,
        versions=library_versions(),
        weights_bytes=weights["bytes"],
        weights_file=WEIGHTS_NAME,
        weights_sha256=weights["sha256"],
    )


def _timm_config(model: nn.Module, spec: ArchitectureSpec, path: Path, block: dict[str, Any]) -> dict[str, Any]:
    """timm's own ``config.json`` (``save_config_for_hf``) with the ``"tract_hub"`` block as one extra key.

    ``pretrained_cfg`` describes these weights: the preprocessing of the recipe they were trained with (when
    the block records one) and none of the keys that name where timm's own released weights came from
    (:data:`~tract_hub.artifacts.publish.WEIGHT_SOURCE_KEYS`: ``tag``, ``license``, ...)."""
    from timm.models._hub import save_config_for_hf

    try:
        save_config_for_hf(
            model,
            str(path),
            model_config={METADATA_KEY: block},
            model_args=spec.model_args or None,
            data_config=data_config(block.get("recipe")),
        )
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"timm cannot describe this {spec.name} in config.json: {error}. Give JSON-serializable "
            "model_kwargs= for the constructor arguments it names"
        ) from error
    config = json.loads(path.read_text(encoding="utf-8"))
    pretrained_cfg = config.get("pretrained_cfg")
    if isinstance(pretrained_cfg, dict) and WEIGHT_SOURCE_KEYS & set(pretrained_cfg):
        config["pretrained_cfg"] = {k: v for k, v in pretrained_cfg.items() if k not in WEIGHT_SOURCE_KEYS}
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


def _torchvision_config(model: nn.Module, spec: ArchitectureSpec, path: Path, block: dict[str, Any]) -> dict[str, Any]:
    """The same files for a torchvision model: its builder, its keyword arguments and the block."""
    config: dict[str, Any] = {"architecture": spec.qualified_name, "model_args": spec.model_args, METADATA_KEY: block}
    num_classes = head_num_classes(model)
    if num_classes is not None:
        config["num_classes"] = num_classes
    path.write_text(json_text(config), encoding="utf-8")
    return config


def _check_rebuilds(model: nn.Module, config: dict[str, Any]) -> None:
    """Refuse to publish a config that would not load back: one that builds a model with other keys, shapes or
    dtypes than this state_dict's, or with constructor arguments of the wrong kind (the checks of loading)."""
    spec = ArchitectureSpec.from_config(config)
    rebuilt = build_on_meta(spec)
    if rebuilt is None:
        logger.warning("could not rebuild %s on the meta device to check the saved config", spec.qualified_name)
        return
    try:
        check_model_args(spec, type(rebuilt))
    except CheckpointIntegrityError as error:
        raise InvalidArgumentError(f"{error}; pass model_kwargs= with values of the constructor's kinds") from None
    difference = describe_difference(specs_of(rebuilt.state_dict()), specs_of(model.state_dict()))
    if difference:
        raise InvalidArgumentError(
            f"config.json would build {spec.qualified_name} with model_args {spec.model_args}, which does not "
            f"match this model: {difference}. Pass architecture= and model_kwargs= with the arguments the model "
            "was built with; a model converted to another dtype (model.half()) loads only as it was built: "
            "convert it back (model.float()) before saving"
        )


def write_checkpoint(
    model: nn.Module, spec: ArchitectureSpec, directory: Path, metadata: TrActMetadata | dict | None
) -> dict[str, Any]:
    """Write ``model.safetensors`` and ``config.json`` into an (empty, staging) ``directory``; returns the config."""
    weights = write_weights(model, directory / WEIGHTS_NAME)
    block = build_metadata(model, spec, weights, metadata).to_json()
    config_path = directory / CONFIG_NAME
    writer = _timm_config if spec.source == "timm" else _torchvision_config
    config = writer(model, spec, config_path, block)
    _check_rebuilds(model, config)
    fsync_file(config_path)
    return config

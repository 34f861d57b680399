"""What of a run is published with a checkpoint: true on any machine, and only what applies.

A run directory records where things were on the machine that trained it (``data.root`` is stored absolute so
that ``--resume`` works from any folder; ``model.init`` may name a local checkpoint). A checkpoint's
``config.json`` and card are read elsewhere, so :func:`published_recipe` keeps what describes the experiment
and leaves out what describes the machine:

* ``data.root`` and ``data.download`` (where the files were, and how they got there) are left out;
* a local ``model.init`` keeps only its folder's name (``hf-hub:`` sources are kept: they name a Hub
  repository, which the card links as the base model);
* sections that configure something the run did not use are left out: the data sub-section of another data
  set (``data.digits`` of a Fashion-MNIST run), the image-folder split names of other data sets, and
  ``model.detection`` without a detector.

:func:`data_config` is the preprocessing the run evaluated with, in the form timm's ``config.json`` records
(``pretrained_cfg``: input size, mean, std, crop), so that ``timm.data.resolve_data_config`` prepares images
for the published weights as the trainer did.

Example:
    >>> recipe = {"data": {"dataset": "fashion_mnist", "root": "/home/me/data", "download": False,
    ...                    "digits": {"size": 16}}, "model": {"init": "/home/me/ckpt/resnet8-tract"}}
    >>> published_recipe(recipe)
    {'data': {'dataset': 'fashion_mnist'}, 'model': {'init': 'resnet8-tract'}}
    >>> data_config({"data": {"dataset": "fashion_mnist", "normalize": "standard"}})["input_size"]
    (1, 28, 28)
"""

from __future__ import annotations

import copy
import re
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from .datasets import DATASETS

#: Keys of a recipe's data section that say where the files were on the training machine.
MACHINE_DATA_KEYS = ("root", "download")

#: ``pretrained_cfg`` keys that describe where timm's own released weights came from (a tag such as
#: ``a1_in1k``, their license, paper and origin): never true of weights tract_hub saved.
WEIGHT_SOURCE_KEYS = frozenset(
    {"tag", "license", "origin_url", "paper_ids", "paper_name", "notes", "hf_hub_id", "hf_hub_filename",
     "hf_hub_revision", "url", "file", "source"}
)  # fmt: skip

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


def _local_name(source: str) -> str:
    """The last component of a local path (POSIX or Windows), without a ``local-dir:`` prefix."""
    path = source.removeprefix("local-dir:").rstrip("/\\")
    windows = PureWindowsPath(path)
    name = (windows if windows.drive or "\\" in path else PurePosixPath(path)).name
    return name or "checkpoint"


def published_init(init: Any) -> Any:
    """A recipe's ``model.init`` as published: ``hf-hub:`` sources and relative ``org/name`` ids as they are,
    a local path by its folder's name."""
    if not isinstance(init, str) or init.startswith("hf-hub:"):
        return init
    if _HUB_ID.match(init) and ".." not in init and not PurePath(init).is_absolute():
        return init
    return _local_name(init)


def published_recipe(recipe: dict[str, Any] | None) -> dict[str, Any] | None:
    """The recipe as a checkpoint publishes it (see the module docstring); the argument is not changed."""
    if not isinstance(recipe, dict):
        return recipe
    published = copy.deepcopy(recipe)
    data, model = published.get("data"), published.get("model")
    if isinstance(data, dict):
        for key in MACHINE_DATA_KEYS:
            data.pop(key, None)
        info = DATASETS.get(data.get("dataset"))  # type: ignore[arg-type]
        if info is not None:
            for other in {row.section for row in DATASETS.values()} - {info.section, None}:
                data.pop(other, None)  # type: ignore[arg-type]
            if info.loader != "image_folder":
                data.pop("train_split", None)
                data.pop("val_split", None)
    if isinstance(model, dict):
        if "init" in model:
            model["init"] = published_init(model["init"])
        if model.get("detector", "none") == "none":
            model.pop("detection", None)
    return published


def data_config(recipe: dict[str, Any] | None) -> dict[str, Any] | None:
    """The evaluation preprocessing of a recipe as timm's ``data_config`` (``input_size``, ``mean``, ``std``,
    ``crop_pct``, ``interpolation``), or None when the table does not know it (scikit-learn's digits are
    normalized with statistics measured when they are loaded)."""
    data = (recipe or {}).get("data")
    info = DATASETS.get(data.get("dataset")) if isinstance(data, dict) else None  # type: ignore[arg-type]
    if info is None or not info.transforms or not isinstance(data, dict):
        return None
    mean, std = data.get("mean") or info.mean, data.get("std") or info.std
    normalize = data.get("normalize", "standard")
    if normalize == "unit":
        mean, std = (0.0,) * info.channels, (1.0,) * info.channels
    elif normalize == "raw255":
        mean, std = (0.0,) * info.channels, (1 / 255,) * info.channels
    size = data.get("eval_image_size") or data.get("image_size") or info.image_size
    side = size or info.native_size
    if mean is None or std is None or side is None:
        return None
    return {
        "input_size": (info.channels, int(side), int(side)),
        "mean": tuple(mean),
        "std": tuple(std),
        "crop_pct": float(data.get("eval_crop_pct", 0.875)) if size else 1.0,
        "interpolation": "bilinear",
    }

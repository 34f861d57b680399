"""TrAct's metadata: the one extra top-level key ``"tract_hub"`` of a checkpoint's ``config.json``, typed.

:class:`TrActMetadata` records lambda (``None`` for a vanilla model), the first layer(s), the recipe and the
metrics, the weights file's size and sha256, the library versions and the format version. It is validated like
a recipe: an unknown key is refused with the closest valid key named, every value is type-checked, and a block
of a newer format is refused with the upgrade to make. It is written as sorted JSON.

Lambda is explicit per layer: ``lam`` is the one value every first layer trained with, ``layer_lams`` the
values of layers that trained with different ones (``lam_for(layer)`` answers for either). In JSON both are the
``"lam"`` key, a number (or null) or an object ``{layer: lambda}``, as format version 1 has always written it.

Example:
    >>> block = {"format_version": 1, "lam": {"stem": 0.1, "conv1": 0.2}, "first_layers": ["stem", "conv1"]}
    >>> metadata = TrActMetadata.from_json(block)
    >>> metadata.lam, metadata.lam_for("conv1")
    (None, 0.2)
    >>> try:
    ...     TrActMetadata.from_json({"format_version": 1, "lamb": 0.1})
    ... except CheckpointIntegrityError as error:
    ...     print(str(error)[:73])
    config.json's "tract_hub" block: unknown key 'lamb'; did you mean 'lam'?
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .._version import __version__
from ..errors import CheckpointIntegrityError, HubError, InvalidArgumentError, TrActError
from .files import json_safe
from .run_dir import CheckpointName
from .schema import closest_key_hint, from_data, to_data

#: Version of the ``"tract_hub"`` block; readers refuse newer versions.
FORMAT_VERSION = 1

#: Top-level key of ``config.json`` under which TrAct's metadata lives (every other key is timm's).
METADATA_KEY = "tract_hub"

#: Keys of the block that tract_hub computes when it writes a checkpoint; ``metadata=`` may not set them.
COMPUTED_KEYS = frozenset(
    {"architecture", "format_version", "versions", "weights_bytes", "weights_file", "weights_sha256"}
)


#: A license as the Hub's ``license`` field names one (``mit``, ``apache-2.0``, ``cc-by-nc-4.0``, ``other``):
#: lower-case words of letters and digits joined by ``-`` or ``.``. It goes into a card's YAML front matter, which
#: a plain Markdown renderer shows as text, so nothing else may reach it.
LICENSE_ID = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")


def check_license(value: str | None) -> None:
    """Refuse a ``license`` that is not a Hub license identifier (see :data:`LICENSE_ID`)."""
    if value is not None and not (isinstance(value, str) and len(value) <= 64 and LICENSE_ID.match(value)):
        raise InvalidArgumentError(
            f"license={value!r} is not a license identifier of the Hub (lower-case, such as 'mit', 'apache-2.0', "
            "'cc-by-4.0' or 'other'); give the identifier and describe anything else in the card's text"
        )


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise InvalidArgumentError(
            f"{name}={value!r} is not a positive finite number; TrAct's lambda is typically 0.1 (0.05 to 0.2)"
        )


@dataclass(frozen=True)
class TrActMetadata:
    """config.json's ``"tract_hub"`` block; see the module docstring."""

    architecture: str | None = None  # "timm:<name>" or "torchvision:<builder>" (computed on save)
    base_model: str | None = None  # the Hub repository it was fine-tuned from
    baseline: dict[str, Any] | None = None  # {"epochs", "final"} of the vanilla run the card compares with
    best: dict[str, Any] | None = None  # the best epoch and its metrics
    checkpoint: CheckpointName | None = None  # which checkpoint of a run directory was exported
    dataset: str | None = None
    epochs: int | None = None
    exact: bool = True  # exact mode (TrAct of each step's whole batch, the default); False: per backward
    first_layers: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION
    lam: float | None = None  # the lambda of every first layer; None: vanilla, or see layer_lams
    layer_lams: dict[str, float] = field(default_factory=dict)  # per first layer, when they differ
    license: str | None = None
    metrics: dict[str, Any] | None = None  # final validation metrics
    recipe: dict[str, Any] | None = None  # the resolved recipe
    recipe_name: str | None = None
    run_name: str | None = None
    versions: dict[str, str] = field(default_factory=dict)  # library versions (computed on save)
    weights_bytes: int | None = None  # computed on save
    weights_file: str | None = None  # computed on save
    weights_sha256: str | None = None  # computed on save

    def __post_init__(self) -> None:
        check_license(self.license)
        if self.lam is not None:
            _positive("lam", self.lam)
        if self.lam is not None and self.layer_lams:
            raise InvalidArgumentError("give lam (one value) or per-layer values, not both")
        for name, value in self.layer_lams.items():
            _positive(f"lam[{name!r}]", value)
        unknown = sorted(set(self.layer_lams) - set(self.first_layers))
        if unknown:
            raise InvalidArgumentError(f"per-layer lam names {unknown}, which are not among {list(self.first_layers)}")
        sha = self.weights_sha256
        if sha is not None and not (len(sha) == 64 and all(c in "0123456789abcdefABCDEF" for c in sha)):
            raise InvalidArgumentError(f"weights_sha256={sha!r} is not a sha256 hex digest")
        if sha is not None:  # hex digits are case-insensitive; the block is compared and written in lower case
            object.__setattr__(self, "weights_sha256", sha.lower())

    @property
    def is_vanilla(self) -> bool:
        """No TrAct lambda is recorded (a vanilla model, or a plain checkpoint)."""
        return self.lam is None and not self.layer_lams

    def lam_for(self, layer: str) -> float | None:
        """The lambda ``layer`` trained with (None: vanilla)."""
        return self.layer_lams.get(layer, self.lam) if self.layer_lams else self.lam

    def lams(self) -> dict[str, float]:
        """First layer -> its lambda, for every recorded first layer (empty for a vanilla model)."""
        return {layer: lam for layer in self.first_layers if (lam := self.lam_for(layer)) is not None}

    # -- JSON ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The block as plain JSON data, keys sorted."""
        data = to_data(self)
        layer_lams = data.pop("layer_lams")
        data["lam"] = layer_lams or data["lam"]
        return dict(sorted(data.items()))

    @classmethod
    def from_json(cls, block: Any, *, error: type[TrActError] = CheckpointIntegrityError) -> TrActMetadata:
        """Read a block (see the module docstring); ``error`` is raised for malformed data."""
        where = f'config.json\'s "{METADATA_KEY}" block'
        if not isinstance(block, dict):
            raise error(f"{where} is {type(block).__name__}, not an object")
        _check_version(block.get("format_version"), where)
        if "layer_lams" in block:
            raise error(f"{where}: unknown key 'layer_lams'; per-layer values are written as 'lam': {{layer: value}}")
        data = dict(block)
        if isinstance(data.get("lam"), dict):
            data["layer_lams"] = data.pop("lam")
        try:
            return from_data(cls, data, error=error)
        except TrActError as raised:  # the type check's `error`, or __post_init__'s InvalidArgumentError
            raise error(f"{where}: {raised}; fix or remove the key in config.json") from None

    @classmethod
    def from_user(cls, metadata: dict[str, Any]) -> TrActMetadata:
        """The block from ``save_pretrained(metadata=...)``: JSON data, no computed key, no unknown key."""
        if not isinstance(metadata, dict):
            raise InvalidArgumentError(f"metadata={metadata!r} is not a dict")
        given = json_safe(metadata, "metadata")
        reserved = sorted(COMPUTED_KEYS & set(given))
        if reserved:
            raise InvalidArgumentError(f"metadata sets {reserved}, which tract_hub computes itself; leave them out")
        valid = {f.name for f in dataclasses.fields(cls)} - COMPUTED_KEYS - {"layer_lams"}
        for key in given:
            if key not in valid:
                raise InvalidArgumentError(
                    f"metadata key {key!r} is not part of TrAct's metadata{closest_key_hint(key, valid)} "
                    f"(valid keys: {', '.join(sorted(valid))})"
                )
        if isinstance(given.get("lam"), dict):
            given["layer_lams"] = given.pop("lam")
        return from_data(cls, given, error=InvalidArgumentError)


def _check_version(version: Any, where: str) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointIntegrityError(f"{where}: format_version is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise HubError(
            f"{where} has format version {version}; this tract_hub {__version__} reads up to {FORMAT_VERSION}. "
            "Upgrade tract_hub (install a newer copy of its source: pip install -U ./tract_hub)"
        )


def read_metadata(config: dict[str, Any]) -> TrActMetadata | None:
    """The ``"tract_hub"`` block of a ``config.json`` (None for a plain timm checkpoint); refuses malformed blocks."""
    block = config.get(METADATA_KEY)
    return None if block is None else TrActMetadata.from_json(block)

"""Model cards: the README.md of a checkpoint, rendered from the templates in ``tract_hub/hub/templates``.

A card is rendered from one :class:`CardInfo`: the architecture, TrAct's metadata (the same
:class:`~tract_hub.artifacts.TrActMetadata` that ``config.json`` holds) and, for a run directory, the per-epoch
history and the vanilla baseline. It starts with the front matter the Hub reads (:mod:`.card_data`), then says
what the model is, how it was trained (the resolved recipe), the results (vanilla vs TrAct when both runs
exist), the training curves, usage, and the paper's citation.

Every value that comes from a file or an argument is rendered inert (:mod:`.markdown`): escaped text, code spans
and a recipe fence that none of its lines can close; links go only to ``huggingface.co/<repository id>``; the
front matter names a data set or base model only when it is a valid Hub repository id.

Example:
    >>> from tract_hub.artifacts import TrActMetadata
    >>> from tract_hub.pretrained.spec import ArchitectureSpec
    >>> metadata = TrActMetadata(lam=0.1, first_layers=("conv1",))
    >>> info = CardInfo(name="demo", spec=ArchitectureSpec("timm", "resnet18"), metadata=metadata)
    >>> render_card(info).splitlines()[:2]
    ['---', 'library_name: timm']
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..artifacts.datasets import task_of
from ..artifacts.metadata import TrActMetadata, read_metadata
from ..artifacts.reading import parse_yaml
from ..artifacts.task import Task
from ..errors import HubError, InvalidArgumentError
from ..pretrained.spec import ArchitectureSpec
from .card_data import card_data, hub_dataset
from .card_results import RunResults, number, results_section
from .markdown import code, fenced, is_repo_id, repo_link, text

_FRONT_MATTER_ORDER = ("library_name", "license", "pipeline_tag", "tags", "datasets", "base_model", "model-index")
_REPO_PLACEHOLDER = "ORG/NAME"

#: How a card says to install tract_hub: it is not on PyPI, so from a copy of its source tree.
INSTALL = "tract_hub is not on PyPI: `pip install ./tract_hub` from a copy of its source tree"
_ARCHITECTURE_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")
_FILE_NAME = re.compile(r"^[\w\-][\w.\-]*\.png$")


@dataclass(frozen=True)
class CardInfo:
    """Everything a card says."""

    name: str
    spec: ArchitectureSpec
    metadata: TrActMetadata = field(default_factory=TrActMetadata)
    num_classes: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # the run's metrics rows, when known
    baseline: RunResults | None = None
    repo_id: str | None = None
    curves: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def task(self) -> Task:
        return task_of(self.metadata.dataset)

    @property
    def results(self) -> RunResults:
        return RunResults.of(self.metadata, self.history)

    @property
    def base_model(self) -> str | None:
        return self.metadata.base_model or base_model_from_recipe(self.metadata.recipe)

    @property
    def trained(self) -> bool:
        """Whether the checkpoint records any training (a recipe, epochs or metrics): a model saved without
        them (for example freshly built and patched) is not said to be trained with or without TrAct."""
        metadata = self.metadata
        return bool(metadata.recipe or metadata.epochs or metadata.metrics or metadata.best or self.history)

    @property
    def lam_text(self) -> str:
        """``"0.1"``, per layer ``"`conv1`: 0.1, `stem`: 0.2"`` (Markdown), or ``""`` for vanilla."""
        if self.metadata.layer_lams:
            return ", ".join(f"{code(layer)}: {lam:g}" for layer, lam in self.metadata.layer_lams.items())
        return f"{self.metadata.lam:g}" if self.metadata.lam is not None else ""


def base_model_from_recipe(recipe: dict[str, Any] | None) -> str | None:
    """The Hub repository a recipe fine-tunes from (its ``init: hf-hub:org/name[@revision]``), else None."""
    if not isinstance(recipe, dict):
        return None
    model = recipe.get("model")
    init = recipe.get("init") or (model.get("init") if isinstance(model, dict) else None)
    if isinstance(init, str) and init.startswith("hf-hub:"):
        return init.removeprefix("hf-hub:").split("@")[0] or None
    return None


def checkpoint_card(config: dict[str, Any], *, name: str, repo_id: str | None = None) -> str:
    """The card of a saved checkpoint, read from its ``config.json``."""
    info = CardInfo(
        name=name,
        spec=ArchitectureSpec.from_config(config),
        metadata=read_metadata(config) or TrActMetadata(),
        num_classes=config.get("num_classes"),
        repo_id=repo_id,
    )
    return render_card(info)


def _template(name: str) -> string.Template:
    text = resources.files("tract_hub.hub").joinpath("templates", name).read_text(encoding="utf-8")
    return string.Template(text)


def published_metrics(metadata: TrActMetadata) -> dict[str, Any]:
    """The metrics of the weights the checkpoint holds: the best epoch's for a run's ``best`` checkpoint, else
    the final epoch's."""
    if metadata.checkpoint == "best" and metadata.best:
        return {key: value for key, value in metadata.best.items() if key != "epoch"}
    return dict(metadata.metrics or {})


def front_matter(info: CardInfo) -> dict[str, Any]:
    """The card's YAML front matter as a dict (``huggingface_hub.ModelCardData``, library_name first).

    A data set or base model is named (and so linked by the Hub) only when it is a valid Hub id.
    """
    dataset = info.metadata.dataset or ""
    data = card_data(
        info.spec,
        info.task,
        model_name=info.repo_id or info.name,
        license=info.metadata.license or "mit",
        dataset=dataset if is_repo_id(hub_dataset(dataset), org=False) else None,
        base_model=info.base_model if is_repo_id(info.base_model) else None,
        final=published_metrics(info.metadata),
    ).to_dict()
    return {key: data[key] for key in _FRONT_MATTER_ORDER if key in data}


def _title(info: CardInfo) -> str:
    if not info.trained:
        how = "no training recorded" + (f" (TrAct λ = {info.lam_text} installed)" if info.lam_text else "")
    elif not info.lam_text:
        how = "trained without TrAct (vanilla)"
    else:
        how = f"trained with TrAct (λ = {info.lam_text})"
    return f"{text(info.name)}: {code(info.spec.name)}, {how}"


def _summary(info: CardInfo) -> str:
    data = f" on {code(info.metadata.dataset)}" if info.metadata.dataset else ""
    layers = ", ".join(code(layer) for layer in info.metadata.first_layers) or "?"
    if not info.trained:
        installed = f" with TrAct (λ = {info.lam_text}) installed on its first layer ({layers})"
        how = (
            f"saved{installed if info.lam_text else ''}; the checkpoint records no training (no recipe, epochs "
            "or metrics), so it says nothing about how its weights were obtained"
        )
    elif not info.lam_text:
        how = f"trained{data} without TrAct (vanilla: no TrAct lambda is recorded)"
    else:
        how = f"trained{data} with TrAct (λ = {info.lam_text}) on its first layer ({layers})"
    library = "timm" if info.spec.source == "timm" else "torchvision"
    plain = (
        f"plain {library}"
        if not _is_tract_architecture(info.spec)
        else "timm (the architecture is tract_hub's, registered with timm when tract_hub.models is imported)"
    )
    return (
        f"A {library} {code(info.spec.name)} {how}. TrAct (Petersen, Borgelt, Ermon, NeurIPS 2024) changes only how "
        f"the first layer learns during training; the weights' format and inference are {plain}. The checkpoint "
        "holds the weights (`model.safetensors`) and `config.json` in timm's Hub layout, with TrAct's training "
        'metadata under the extra key `"tract_hub"`.'
    )


def _is_tract_architecture(spec: ArchitectureSpec) -> bool:
    """Whether ``spec`` is one of tract_hub's own architectures (registered with timm by tract_hub.models)."""
    from ..models import tract_architectures

    return spec.source == "timm" and spec.name in tract_architectures()


def _details(info: CardInfo) -> str:
    metadata, args = info.metadata, info.spec.model_args
    rows = [
        ("Architecture", code(info.spec.qualified_name)),
        ("Constructor arguments", code(json.dumps(args, sort_keys=True)) if args else "the defaults"),
        ("TrAct λ", info.lam_text or "none (vanilla)"),
        ("First layer(s)", ", ".join(code(name) for name in metadata.first_layers) or "not recorded"),
        (
            "Exact mode (TrAct of each step's whole batch)",
            "yes" if metadata.exact else "no (per backward, as in the paper)",
        ),
        ("Data set", code(metadata.dataset) if metadata.dataset else "not recorded"),
        ("Classes", number(info.num_classes) if info.num_classes else "not recorded"),
    ]
    if metadata.checkpoint == "best" and metadata.best and metadata.best.get("epoch") is not None:
        rows.append(("Weights", f"the best epoch's (epoch {number(metadata.best['epoch'])}, by the main metric)"))
    elif metadata.checkpoint is not None:
        rows.append(("Weights", f"the {metadata.checkpoint} epoch's"))
    if info.base_model:
        rows.append(("Fine-tuned from", repo_link(info.base_model)))
    return "\n".join(f"- **{key}:** {value}" for key, value in rows)


def _training(info: CardInfo) -> str:
    notes = "".join(f"\n\n**Note:** {text(note)}" for note in info.notes)
    recipe = info.metadata.recipe
    if not recipe:
        return "The training recipe was not recorded with this checkpoint." + notes
    name = f" {code(info.metadata.recipe_name)}" if info.metadata.recipe_name else ""
    epochs = info.metadata.epochs
    epochs = f", {number(epochs)} epoch{'s' if epochs != 1 else ''}" if epochs else ""
    dumped = yaml.safe_dump(recipe, sort_keys=True, allow_unicode=True)
    block = fenced(dumped, "yaml")
    return (
        f"Recipe{name}{epochs}, resolved as the trainer used it (the sections that apply; where the data lay on "
        f"the training machine is left out):\n\n{block}" + notes
    )


def _usage(info: CardInfo) -> str:
    if info.spec.source == "torchvision":
        template = "usage_torchvision.md"
    elif _is_tract_architecture(info.spec):
        template = "usage_tract_registered.md"
    else:
        template = "usage_timm.md"
    lam = info.metadata.lam if info.metadata.lam is not None else 0.1
    if info.repo_id is not None and not is_repo_id(info.repo_id):
        raise InvalidArgumentError(f"repo_id={info.repo_id!r} is not a Hub repository id org/name")
    if not _ARCHITECTURE_NAME.match(info.spec.name):
        raise InvalidArgumentError(f"architecture {info.spec.name!r} is not a timm or torchvision model name")
    usage = _template(template).substitute(
        repo_id=info.repo_id or _REPO_PLACEHOLDER,
        architecture=info.spec.name,
        lam=f"{lam:g}",
        num_classes="NUM_CLASSES",
        install=INSTALL,
    )
    if not info.repo_id:
        usage += (
            f"\n\nReplace `{_REPO_PLACEHOLDER}` by the Hub repository; a local copy loads with "
            '`tract_hub.from_pretrained("path/to/dir")` or '
            '`timm.create_model("local-dir:path/to/dir", pretrained=True)`.'
        )
    return usage.rstrip()


def render_card(info: CardInfo) -> str:
    """The model card (README.md text) for ``info``."""
    if info.curves is not None and not _FILE_NAME.match(info.curves):
        raise InvalidArgumentError(f"curves={info.curves!r} is not a file name of the checkpoint folder")
    curves = f"\n![Training curves]({info.curves})\n" if info.curves else ""
    matter = yaml.safe_dump(front_matter(info), sort_keys=False, allow_unicode=True)
    return _template("model_card.md").substitute(
        front_matter=matter,
        title=_title(info),
        summary=_summary(info),
        details=_details(info),
        training=_training(info),
        results=results_section(info.results, info.baseline, info.task),
        curves=curves,
        usage=_usage(info),
    )


def parse_front_matter(card: str) -> dict[str, Any]:
    """The YAML front matter of a card (``{}`` if it has none); :class:`HubError` if it is not valid YAML (or
    uses what :func:`~tract_hub.artifacts.reading.parse_yaml` refuses)."""
    if not card.startswith("---\n"):
        return {}
    end = card.find("\n---\n", 4)
    if end < 0:
        return {}
    return parse_yaml(card[4 : end + 1], "the card's front matter", error=HubError) or {}

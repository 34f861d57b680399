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
import math
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..artifacts.metadata import TrActMetadata, read_metadata
from ..artifacts.reading import parse_yaml
from ..artifacts.task import Task, task_of
from ..errors import HubError, InvalidArgumentError
from ..pretrained.spec import ArchitectureSpec
from .card_data import card_data, hub_dataset
from .markdown import code, fenced, is_repo_id, repo_link, text, word

_METRIC_ORDER = ("top1", "top5", "map", "val_loss", "train_loss")
_FRONT_MATTER_ORDER = ("library_name", "license", "pipeline_tag", "tags", "datasets", "base_model", "model-index")
_REPO_PLACEHOLDER = "ORG/NAME"
_ARCHITECTURE_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")
_FILE_NAME = re.compile(r"^[\w\-][\w.\-]*\.png$")


@dataclass(frozen=True)
class RunResults:
    """What one training run reports: lambda (None = vanilla), epochs, final and best metrics, per-epoch history."""

    lam: float | None
    epochs: int | None = None
    final: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "Vanilla" if self.lam is None else f"TrAct (λ = {self.lam:g})"

    @classmethod
    def of(cls, metadata: TrActMetadata, history: list[dict[str, Any]] | None = None) -> RunResults:
        """The results a checkpoint's metadata records (with the run's ``history`` when there is one)."""
        return cls(
            metadata.lam, metadata.epochs, dict(metadata.metrics or {}), dict(metadata.best or {}), history or []
        )


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


def _number(value: Any) -> str:
    """A number as a table shows it; anything else as a code span (a table cell's ``|`` escaped)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return code(value, table=True)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric_keys(*dicts: dict[str, Any]) -> list[str]:
    keys = {key for d in dicts for key, value in d.items() if key != "epoch" and isinstance(value, int | float)}
    return [key for key in _METRIC_ORDER if key in keys] + sorted(keys - set(_METRIC_ORDER))


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
        final=info.metadata.metrics,
    ).to_dict()
    return {key: data[key] for key in _FRONT_MATTER_ORDER if key in data}


def _title(info: CardInfo) -> str:
    how = "trained without TrAct (vanilla)" if not info.lam_text else f"trained with TrAct (λ = {info.lam_text})"
    return f"{text(info.name)}: {code(info.spec.name)}, {how}"


def _summary(info: CardInfo) -> str:
    data = f" on {code(info.metadata.dataset)}" if info.metadata.dataset else ""
    layers = ", ".join(code(layer) for layer in info.metadata.first_layers) or "?"
    if not info.lam_text:
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
        ("Exact mode (per optimizer step)", "yes" if metadata.exact else "no (per backward, as in the paper)"),
        ("Data set", code(metadata.dataset) if metadata.dataset else "not recorded"),
        ("Classes", _number(info.num_classes) if info.num_classes else "not recorded"),
    ]
    if info.base_model:
        rows.append(("Fine-tuned from", repo_link(info.base_model)))
    return "\n".join(f"- **{key}:** {value}" for key, value in rows)


def _training(info: CardInfo) -> str:
    notes = "".join(f"\n\n**Note:** {text(note)}" for note in info.notes)
    recipe = info.metadata.recipe
    if not recipe:
        return "The training recipe was not recorded with this checkpoint." + notes
    name = f" {code(info.metadata.recipe_name)}" if info.metadata.recipe_name else ""
    epochs = f", {_number(info.metadata.epochs)} epochs" if info.metadata.epochs else ""
    dumped = yaml.safe_dump(recipe, sort_keys=True, allow_unicode=True)
    block = fenced(dumped, "yaml")
    return f"Recipe{name}{epochs}, fully resolved (every key, as the trainer used it):\n\n{block}" + notes


def _best(results: RunResults, key: str) -> str:
    if key not in results.best:
        return ""
    epoch = results.best.get("epoch")
    return _number(results.best[key]) + (f" (epoch {_number(epoch)})" if epoch is not None else "")


def _results(info: CardInfo) -> str:
    results = info.results
    if not (results.final or results.best):
        return "No metrics were recorded with this checkpoint."
    runs = [run for run in (info.baseline, results) if run is not None]
    compare = info.baseline is not None

    def row(label: str, cells: list[str], delta: str = "") -> str:
        return "| " + " | ".join([label, *cells, *([delta] if compare else [])]) + " |"

    lines = [row("Metric", [run.label for run in runs], "TrAct − vanilla")]
    lines.append("|" + "---|" * (len(runs) + 1 + compare))
    lines.append(row("Epochs", [_number(run.epochs) if run.epochs else "" for run in runs]))
    for key in _metric_keys(*(run.final for run in runs), *(run.best for run in runs)):
        final = [run.final.get(key) for run in runs]
        delta = ""
        if compare and all(isinstance(value, int | float) for value in final):
            delta = f"{final[1] - final[0]:+.4g}"
        name = word(key, table=True)
        lines.append(row(f"Final {name}", [_number(value) if value is not None else "" for value in final], delta))
        if any(key in run.best for run in runs):
            lines.append(row(f"{name} at the best epoch", [_best(run, key) for run in runs]))
    if info.baseline is not None:
        lines += ["", _speedup(info.baseline, results, info.task.main_metric)]
    return "\n".join(lines).rstrip()


def _speedup(baseline: RunResults, tract: RunResults, key: str) -> str:
    """When TrAct first reached the vanilla run's final main metric."""
    if key not in baseline.final or key not in tract.final:
        return ""
    target = baseline.final[key]
    reached = next(
        (row.get("epoch") for row in tract.history if isinstance(row.get(key), int | float) and row[key] >= target),
        None,
    )
    name = word(key)
    if reached is None:
        return f"TrAct did not reach the vanilla run's final {name} ({_number(target)}) within its epochs."
    return (
        f"TrAct reached the vanilla run's final {name} ({_number(target)}, after {_number(baseline.epochs)} epochs) "
        f"at epoch {_number(reached)}."
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
        results=_results(info),
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

"""Model cards: the README.md of a checkpoint, rendered from the templates in ``tract_hub/hub/templates``.

The card starts with YAML front matter as the Hub reads it (``library_name``, ``license``, ``tags`` with ``tract``
and ``image-classification``, ``datasets``, ``base_model`` when fine-tuned, ``model-index`` with the metrics),
then says what the model is, how it was trained (the resolved recipe), the results (vanilla vs TrAct when both
runs exist), the training curves, usage with plain timm and with tract_hub, and the paper's citation.

Example:
    >>> from tract_hub.hub.architecture import ArchitectureSpec
    >>> from tract_hub.hub.card import CardInfo, render_card
    >>> info = CardInfo(name="demo", spec=ArchitectureSpec("timm", "resnet18"), lam=0.1, first_layers=["conv1"])
    >>> render_card(info).splitlines()[0]
    '---'
"""

from __future__ import annotations

import json
import math
import string
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from .architecture import ArchitectureSpec

#: Metrics the model-index reports: run metric key -> (model-index type, display name).
INDEX_METRICS = {
    "top1": ("accuracy", "Top-1 accuracy"),
    "top5": ("top_5_accuracy", "Top-5 accuracy"),
    "map": ("mean_average_precision", "mAP"),
}
_METRIC_ORDER = ("top1", "top5", "map", "val_loss", "train_loss")
_REPO_PLACEHOLDER = "ORG/NAME"


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


@dataclass(frozen=True)
class CardInfo:
    """Everything a card says; built from a run directory or from ``save_pretrained``'s metadata."""

    name: str
    spec: ArchitectureSpec
    lam: float | None
    first_layers: list[str] = field(default_factory=list)
    exact: bool = False
    dataset: str | None = None
    num_classes: int | None = None
    recipe: dict[str, Any] | None = None
    recipe_name: str | None = None
    results: RunResults | None = None
    baseline: RunResults | None = None
    base_model: str | None = None
    license: str = "mit"
    repo_id: str | None = None
    curves: str | None = None
    notes: list[str] = field(default_factory=list)


def base_model_from_recipe(recipe: dict[str, Any] | None) -> str | None:
    """The Hub repository a recipe fine-tunes from (its ``init: hf-hub:org/name[@revision]``), else None."""
    if not isinstance(recipe, dict):
        return None
    model = recipe.get("model")
    init = recipe.get("init") or (model.get("init") if isinstance(model, dict) else None)
    if isinstance(init, str) and init.startswith("hf-hub:"):
        return init.removeprefix("hf-hub:").split("@")[0] or None
    return None


def _template(name: str) -> string.Template:
    text = resources.files("tract_hub.hub").joinpath("templates", name).read_text(encoding="utf-8")
    return string.Template(text)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric_keys(*dicts: dict[str, Any]) -> list[str]:
    keys = {key for d in dicts for key, value in d.items() if key != "epoch" and isinstance(value, int | float)}
    return [key for key in _METRIC_ORDER if key in keys] + sorted(keys - set(_METRIC_ORDER))


def _main_metric(results: RunResults) -> str | None:
    return next((key for key in ("top1", "map") if key in results.final), None)


def front_matter(info: CardInfo) -> dict[str, Any]:
    """The card's YAML front matter as a dict (the Hub's model card metadata)."""
    tags = ["tract", "image-classification", info.spec.source, "pytorch"]
    if info.results and "map" in info.results.final:
        tags.append("object-detection")
    data: dict[str, Any] = {
        "library_name": "timm" if info.spec.source == "timm" else "torchvision",
        "license": info.license,
        "tags": tags,
        "pipeline_tag": "image-classification",
    }
    if info.dataset:
        data["datasets"] = [info.dataset]
    if info.base_model:
        data["base_model"] = info.base_model
    index = _model_index(info)
    if index:
        data["model-index"] = index
    return data


def _model_index(info: CardInfo) -> list[dict[str, Any]]:
    if not info.results or not info.dataset:
        return []
    metrics = [
        {"type": INDEX_METRICS[key][0], "name": INDEX_METRICS[key][1], "value": float(info.results.final[key])}
        for key in INDEX_METRICS
        if isinstance(info.results.final.get(key), int | float)
    ]
    if not metrics:
        return []
    task = "object-detection" if "map" in info.results.final else "image-classification"
    return [
        {
            "name": info.repo_id or info.name,
            "results": [
                {
                    "task": {"type": task, "name": task.replace("-", " ").capitalize()},
                    "dataset": {"type": info.dataset, "name": info.dataset},
                    "metrics": metrics,
                }
            ],
        }
    ]


def _title(info: CardInfo) -> str:
    how = "trained without TrAct (vanilla)" if info.lam is None else f"trained with TrAct (λ = {info.lam:g})"
    return f"{info.name}: {info.spec.name}, {how}"


def _summary(info: CardInfo) -> str:
    data = f" on {info.dataset}" if info.dataset else ""
    if info.lam is None:
        how = f"trained{data} without TrAct (vanilla: no TrAct lambda is recorded)"
    else:
        how = f"trained{data} with TrAct (λ = {info.lam:g}) on its first layer ({', '.join(info.first_layers) or '?'})"
    library = "timm" if info.spec.source == "timm" else "torchvision"
    plain = (
        f"plain {library}"
        if not _is_tract_architecture(info.spec)
        else "timm (the architecture is tract_hub's, registered with timm when tract_hub.models is imported)"
    )
    return (
        f"A {library} `{info.spec.name}` {how}. TrAct (Petersen, Borgelt, Ermon, NeurIPS 2024) changes only how "
        f"the first layer learns during training; the weights' format and inference are {plain}. The checkpoint "
        "holds the weights (`model.safetensors`) and `config.json` in timm's Hub layout, with TrAct's training "
        'metadata under the extra key `"tract_hub"`.'
    )


def _is_tract_architecture(spec: ArchitectureSpec) -> bool:
    """Whether ``spec`` is one of tract_hub's own architectures (registered with timm by tract_hub.models)."""
    from ..models import tract_architectures

    return spec.source == "timm" and spec.name in tract_architectures()


def _details(info: CardInfo) -> str:
    rows = [
        ("Architecture", f"`{info.spec.qualified_name}`"),
        (
            "Constructor arguments",
            f"`{json.dumps(info.spec.model_args, sort_keys=True)}`" if info.spec.model_args else "the defaults",
        ),
        ("TrAct λ", "none (vanilla)" if info.lam is None else f"{info.lam:g}"),
        ("First layer(s)", ", ".join(f"`{name}`" for name in info.first_layers) or "not recorded"),
        ("Exact mode (per optimizer step)", "yes" if info.exact else "no (per backward, as in the paper)"),
        ("Data set", info.dataset or "not recorded"),
        ("Classes", str(info.num_classes) if info.num_classes else "not recorded"),
    ]
    if info.base_model:
        rows.append(("Fine-tuned from", f"[{info.base_model}](https://huggingface.co/{info.base_model})"))
    return "\n".join(f"- **{key}:** {value}" for key, value in rows)


def _training(info: CardInfo) -> str:
    notes = "".join(f"\n\n**Note:** {note}" for note in info.notes)
    if not info.recipe:
        return "The training recipe was not recorded with this checkpoint." + notes
    name = f" `{info.recipe_name}`" if info.recipe_name else ""
    epochs = f", {info.results.epochs} epochs" if info.results and info.results.epochs else ""
    text = yaml.safe_dump(info.recipe, sort_keys=True, allow_unicode=True).rstrip()
    return f"Recipe{name}{epochs}, fully resolved (every key, as the trainer used it):\n\n```yaml\n{text}\n```" + notes


def _best(results: RunResults, key: str) -> str:
    if key not in results.best:
        return ""
    epoch = results.best.get("epoch")
    return _number(results.best[key]) + (f" (epoch {epoch})" if epoch is not None else "")


def _results(info: CardInfo) -> str:
    if not info.results or not (info.results.final or info.results.best):
        return "No metrics were recorded with this checkpoint."
    runs = [run for run in (info.baseline, info.results) if run is not None]
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
        lines.append(row(f"Final {key}", [_number(value) if value is not None else "" for value in final], delta))
        if any(key in run.best for run in runs):
            lines.append(row(f"{key} at the best epoch", [_best(run, key) for run in runs]))
    if compare:
        lines += ["", _speedup(info.baseline, info.results)]
    return "\n".join(lines).rstrip()


def _speedup(baseline: RunResults, tract: RunResults) -> str:
    key = _main_metric(baseline)
    if key is None or key not in tract.final:
        return ""
    target = baseline.final[key]
    reached = next(
        (row.get("epoch") for row in tract.history if isinstance(row.get(key), int | float) and row[key] >= target),
        None,
    )
    if reached is None:
        return f"TrAct did not reach the vanilla run's final {key} ({_number(target)}) within its epochs."
    return (
        f"TrAct reached the vanilla run's final {key} ({_number(target)}, after {baseline.epochs} epochs) at "
        f"epoch {reached}."
    )


def _usage(info: CardInfo) -> str:
    if info.spec.source == "torchvision":
        template = "usage_torchvision.md"
    elif _is_tract_architecture(info.spec):
        template = "usage_tract_registered.md"
    else:
        template = "usage_timm.md"
    usage = _template(template).substitute(
        repo_id=info.repo_id or _REPO_PLACEHOLDER,
        architecture=info.spec.name,
        lam=f"{info.lam:g}" if info.lam is not None else "0.1",
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
    """The YAML front matter of a card (``{}`` if it has none); ``yaml.YAMLError`` if it is not valid YAML."""
    if not card.startswith("---\n"):
        return {}
    end = card.find("\n---\n", 4)
    if end < 0:
        return {}
    return yaml.safe_load(card[4 : end + 1]) or {}

"""A run directory's checkpoint in Hub format (``save_run``) and its model card (``write_run_card``).

The card is built from the run's resolved recipe and its recorded metrics, and compares with a vanilla baseline
run when one is given.

Example:
    >>> from tract_hub.hub import save_run
    >>> save_run("runs/digits_tract", "hub/digits_tract", baseline="runs/digits_vanilla")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import InvalidArgumentError
from ..models import resolve_architecture
from .architecture import ArchitectureSpec, build
from .atomic import atomic_directory
from .card import CardInfo, base_model_from_recipe, render_card
from .layout import CARD_NAME, CURVES_NAME
from .plot import write_training_curves
from .runs import RunRecord, read_run
from .save import write_checkpoint
from .weights import load_strict, read_weights

logger = logging.getLogger(__name__)


def _check_baseline(run: RunRecord, baseline: RunRecord | None) -> None:
    if baseline is None:
        return
    if baseline.lam is not None:
        raise InvalidArgumentError(
            f"baseline run {str(baseline.directory)!r} was trained with TrAct (lam={baseline.lam}); the baseline must "
            "be the vanilla run (lam: null)"
        )
    if run.lam is None:
        raise InvalidArgumentError(f"run {str(run.directory)!r} is itself vanilla (lam: null); compare a TrAct run")
    for what in ("architecture", "dataset"):
        ours, theirs = getattr(run, what), getattr(baseline, what)
        if ours != theirs:
            raise InvalidArgumentError(
                f"the baseline run's {what} is {theirs!r} but the run's is {ours!r}; compare runs of the same {what}"
            )


def _run_notes(run: RunRecord) -> list[str]:
    """What a reader must know about how the run ended (stopped early, diverged)."""
    summary, notes = run.summary, []
    planned = (run.recipe or {}).get("epochs")
    if summary.get("complete") is False:
        of = f" of the {planned} planned" if planned else ""
        notes.append(f"the run stopped after {summary.get('epochs')}{of} epochs; these are the figures it reached.")
    if summary.get("diverged_at_epoch") is not None:
        notes.append(f"the run diverged at epoch {summary['diverged_at_epoch']} (non-finite loss).")
    return notes


def _check_exportable(run: RunRecord) -> None:
    """Only plain timm / torchvision architectures can be published (a detector or input-norm wrapper cannot)."""
    wrappers = [key for key in ("detector", "input_norm") if run.summary["model"].get(key)]
    if wrappers:
        raise InvalidArgumentError(
            f"run {str(run.directory)!r} trained a model wrapped by {wrappers} around {run.architecture}; only plain "
            "timm architectures and torchvision builders can be published as Hub checkpoints"
        )


def run_card_info(
    run: RunRecord, baseline: RunRecord | None = None, *, repo_id: str | None = None, curves: str | None = None
) -> CardInfo:
    """What the card of ``run`` says (and of its vanilla ``baseline``)."""
    _check_baseline(run, baseline)
    source, arch = resolve_architecture(run.architecture)
    summary = run.summary
    license_name = summary.get("license") or (run.recipe or {}).get("license") or "mit"
    return CardInfo(
        name=repo_id.split("/")[-1] if repo_id else run.name,
        spec=ArchitectureSpec(source, arch, run.model_kwargs),
        lam=run.lam,
        first_layers=list(summary.get("first_layers") or []),
        exact=bool(summary.get("exact")),
        dataset=run.dataset,
        num_classes=summary.get("num_classes"),
        recipe=run.recipe,
        recipe_name=summary.get("recipe_name"),
        results=run.results(),
        baseline=baseline.results() if baseline else None,
        base_model=base_model_from_recipe(run.recipe),
        license=str(license_name),
        repo_id=repo_id,
        curves=curves,
        notes=_run_notes(run),
    )


def write_run_card(
    run_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write the model card of a run to ``path`` and its training curves next to it; returns ``path``."""
    run = read_run(run_dir)
    base = read_run(baseline) if baseline is not None else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_path = path.with_name(CURVES_NAME)
    has_curves = write_training_curves(curves_path, [r.results() for r in (base, run) if r is not None])
    info = run_card_info(run, base, repo_id=repo_id, curves=CURVES_NAME if has_curves else None)
    path.write_text(render_card(info), encoding="utf-8")
    return path


def save_run(
    run_dir: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
    checkpoint: str = "best",
    repo_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a run's ``best`` (or ``last``) checkpoint in Hub format, with the card built from the run.

    The weights are rebuilt into the run's architecture and loaded strictly before anything is written, so a
    published folder always loads. The card (README.md) and ``training_curves.png`` are always regenerated.
    """
    run = read_run(run_dir)
    base = read_run(baseline) if baseline is not None else None
    _check_baseline(run, base)
    _check_exportable(run)
    source, arch = resolve_architecture(run.architecture)
    spec = ArchitectureSpec(source, arch, run.model_kwargs)
    weights = run.weights(checkpoint)
    model = build(spec)
    load_strict(model, read_weights(weights), f"{spec.qualified_name} with kwargs {spec.model_args} ({weights})")
    summary = run.summary
    metadata = {
        "best": summary.get("best"),
        "checkpoint": checkpoint,
        "dataset": run.dataset,
        "epochs": summary.get("epochs"),
        "exact": bool(summary.get("exact")),
        "first_layers": list(summary.get("first_layers") or []),
        "lam": run.lam,
        "metrics": summary.get("final"),
        "recipe": run.recipe,
        "recipe_name": summary.get("recipe_name"),
        "run_name": run.name,
    }
    if base is not None:
        metadata["baseline"] = {"epochs": base.summary.get("epochs"), "final": base.summary.get("final")}
    with atomic_directory(directory, overwrite=overwrite) as staging:
        write_checkpoint(model, spec, staging, metadata)
        has_curves = write_training_curves(staging / CURVES_NAME, [r.results() for r in (base, run) if r is not None])
        info = run_card_info(run, base, repo_id=repo_id, curves=CURVES_NAME if has_curves else None)
        (staging / CARD_NAME).write_text(render_card(info), encoding="utf-8")
    logger.info("saved run %s (%s checkpoint) to %s", run.directory, checkpoint, directory)
    return Path(directory)

"""A run directory's checkpoint in Hub format (``save_run``) and its model card (``write_run_card``).

A run is read once (:class:`~tract_hub.artifacts.Run`) and turned into one
:class:`~tract_hub.artifacts.TrActMetadata`; the checkpoint's ``config.json`` and the card are both written
from it. The card compares with a vanilla baseline run when one is given.

Example:
    >>> from tract_hub.hub import save_run
    >>> save_run("runs/digits_tract", "hub/digits_tract", baseline="runs/digits_vanilla")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..artifacts.checkpoint_files import CARD_NAME, CURVES_NAME
from ..artifacts.curves import Curve, plot_curves
from ..artifacts.files import atomic_directory
from ..artifacts.metadata import TrActMetadata
from ..artifacts.publish import published_recipe
from ..artifacts.run_dir import BEST, CheckpointName, Run, RunDirectory
from ..errors import InvalidArgumentError
from ..models import resolve_architecture
from ..pretrained import ArchitectureSpec, build_and_load, write_checkpoint
from .card import CardInfo, RunResults, base_model_from_recipe, render_card

logger = logging.getLogger(__name__)


def _check_baseline(run: Run, baseline: Run | None) -> None:
    if baseline is None:
        return
    if baseline.is_tract:
        raise InvalidArgumentError(
            f"baseline run {str(baseline.directory)!r} was trained with TrAct (lam={baseline.summary.lam}); the "
            "baseline must be the vanilla run (lam: null)"
        )
    if not run.is_tract:
        raise InvalidArgumentError(f"run {str(run.directory)!r} is itself vanilla (lam: null); compare a TrAct run")
    for what, ours, theirs in (
        ("architecture", run.summary.model.architecture, baseline.summary.model.architecture),
        ("dataset", run.summary.dataset, baseline.summary.dataset),
    ):
        if ours != theirs:
            raise InvalidArgumentError(
                f"the baseline run's {what} is {theirs!r} but the run's is {ours!r}; compare runs of the same {what}"
            )


def _notes(run: Run) -> tuple[str, ...]:
    """What a reader must know about how the run ended (stopped early, diverged)."""
    summary, notes = run.summary, []
    planned = (run.recipe or {}).get("epochs") or ((run.recipe or {}).get("train") or {}).get("epochs")
    if summary.complete is False:
        of = f" of the {planned} planned" if planned else ""
        notes.append(f"the run stopped after {summary.epochs}{of} epochs; these are the figures it reached.")
    if summary.diverged_at_epoch is not None:
        notes.append(f"the run diverged at epoch {summary.diverged_at_epoch} (non-finite loss).")
    return tuple(notes)


def _spec(run: Run) -> ArchitectureSpec:
    """The run's architecture; only plain timm / torchvision architectures can be published."""
    model = run.summary.model
    if model.wrappers:
        raise InvalidArgumentError(
            f"run {str(run.directory)!r} trained a model wrapped by {model.wrappers} around {model.architecture}; "
            "only plain timm architectures and torchvision builders can be published as Hub checkpoints"
        )
    source, arch = resolve_architecture(model.architecture)
    return ArchitectureSpec(source, arch, dict(model.kwargs))


def run_metadata(run: Run, baseline: Run | None = None, *, checkpoint: CheckpointName | None = None) -> TrActMetadata:
    """TrAct's metadata of a run (and of the vanilla ``baseline`` it is compared with)."""
    summary = run.summary
    return TrActMetadata(
        base_model=base_model_from_recipe(run.recipe),
        baseline={"epochs": baseline.summary.epochs, "final": baseline.summary.final} if baseline else None,
        best=summary.best or None,
        checkpoint=checkpoint,
        dataset=summary.dataset,
        epochs=summary.epochs,
        exact=summary.exact,
        first_layers=summary.first_layers,
        lam=summary.lam,
        license=summary.license,
        metrics=summary.final or None,
        recipe=published_recipe(run.recipe),
        recipe_name=summary.recipe_name,
        run_name=run.name,
    )


def _results(run: Run) -> RunResults:
    summary = run.summary
    return RunResults(summary.lam, summary.epochs, dict(summary.final), dict(summary.best), run.history)


def _write_card(
    run: Run, baseline: Run | None, spec: ArchitectureSpec, path: Path, repo_id: str | None, checkpoint: CheckpointName
) -> None:
    """The card of ``run``'s ``checkpoint`` at ``path``, and its ``training_curves.png`` next to it."""
    curves = [Curve(RunResults(r.summary.lam).label, r.is_tract, r.history) for r in (baseline, run) if r is not None]
    has_curves = plot_curves(curves, path.with_name(CURVES_NAME), run.summary.task) is not None
    info = CardInfo(
        name=repo_id.split("/")[-1] if repo_id else run.name,
        spec=spec,
        metadata=run_metadata(run, baseline, checkpoint=checkpoint),
        num_classes=run.summary.num_classes,
        history=run.history,
        baseline=_results(baseline) if baseline else None,
        repo_id=repo_id,
        curves=CURVES_NAME if has_curves else None,
        notes=_notes(run),
    )
    path.write_text(render_card(info), encoding="utf-8")


def _read(run_dir: str | os.PathLike[str], baseline: str | os.PathLike[str] | None) -> tuple[Run, Run | None]:
    run = RunDirectory(run_dir).read()
    base = RunDirectory(baseline).read() if baseline is not None else None
    _check_baseline(run, base)
    return run, base


def write_run_card(
    run_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    checkpoint: CheckpointName = BEST,
) -> Path:
    """Write the model card of a run's ``checkpoint`` (the one ``push`` publishes by default) to ``path`` and its
    training curves next to it; returns ``path``."""
    run, base = _read(run_dir, baseline)
    source, arch = resolve_architecture(run.summary.model.architecture)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = ArchitectureSpec(source, arch, dict(run.summary.model.kwargs))
    _write_card(run, base, spec, path, repo_id, checkpoint)
    return path


def save_run(
    run_dir: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
    checkpoint: CheckpointName = BEST,
    repo_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a run's ``best`` (or ``last``) checkpoint in Hub format, with the card built from the run.

    The weights are rebuilt into the run's architecture and loaded strictly before anything is written, so a
    published folder always loads. The card (README.md) and ``training_curves.png`` are always regenerated.
    """
    run, base = _read(run_dir, baseline)
    spec = _spec(run)
    weights = run.weights(checkpoint)
    model = build_and_load(spec, weights, f"{spec.qualified_name} with kwargs {spec.model_args} ({weights})")
    needed = weights.stat().st_size
    with atomic_directory(directory, overwrite=overwrite, needed_bytes=needed) as staging:
        write_checkpoint(model, spec, staging, run_metadata(run, base, checkpoint=checkpoint))
        _write_card(run, base, spec, staging / CARD_NAME, repo_id, checkpoint)
    logger.info("saved run %s (%s checkpoint) to %s", run.directory, checkpoint, directory)
    return Path(directory)

"""The demo (``tract-hub demo``): the same small model trained with and without TrAct on data that needs no
download, then published in the Hub format and loaded back. It uses both training and the hub, so it sits
above both.

For each seed, the demo recipe (:mod:`~tract_hub.training.demo_recipe`) is trained twice with the same
initialization and data order, vanilla and with TrAct. The demo prints the validation accuracy (on the
held-out quarter of the digits) per epoch (mean over the seeds) and per seed side by side, writes the plot,
saves the TrAct model of the first seed in the Hub format (``tract_hub.save_pretrained``), loads it back
(``tract_hub.from_pretrained``) and checks that the reloaded model gives the same outputs.

Example (made tiny with overrides; ``tract-hub demo`` runs the real thing):
    >>> import tempfile
    >>> tiny = ["data.digits.size=8", "model.kwargs.width=4", "data.max_train_samples=128"]
    >>> result = run_demo(tempfile.mkdtemp(), epochs=1, seeds=1, device="cpu", save=False, overrides=tiny)
    >>> [run.name for run in result.run_dirs], result.plot.name
    (['seed0-vanilla', 'seed0-tract'], 'demo.png')
"""

from __future__ import annotations

import logging
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .artifacts.curves import plot_paired_curves
from .artifacts.metadata import TrActMetadata
from .artifacts.run_dir import RunDirectory
from .errors import InvalidArgumentError, TrActStateError
from .hub import save_pretrained
from .pretrained import from_pretrained
from .training.data import build_datasets
from .training.demo_recipe import demo_recipe
from .training.loop import TrainResult, train
from .training.progress import plural
from .training.recipe import Recipe, recipe_to_data

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "tract_resnet8_digits16"


@dataclass
class DemoResult:
    """What the demo measured and wrote."""

    output_dir: Path
    table: str
    curves: dict[str, list[list[float]]]  # variant -> per seed, top-1 per epoch
    plot: Path
    checkpoint: Path | None = None
    reload_max_abs_diff: float | None = None
    run_dirs: list[Path] = field(default_factory=list)


def _curve(rows: Sequence[dict[str, Any]]) -> list[float]:
    return [row["top1"] for row in rows if row.get("top1") is not None]


def _mean_std(values: Sequence[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):6.2f} ± {100 * spread:5.2f}"


def format_demo_table(curves: dict[str, list[list[float]]], seeds: Sequence[int]) -> str:
    """Per-epoch mean accuracy (and std over seeds) side by side, then the final accuracy of each seed."""
    vanilla, tract = curves["vanilla"], curves["tract"]
    lines = [
        f"Validation accuracy (%), mean ± std over {plural(len(seeds), 'seed')}",
        "",
        f"epoch   {'vanilla':>14}   {'TrAct':>14}   TrAct - vanilla",
    ]
    for epoch in range(len(vanilla[0])):
        v = [run[epoch] for run in vanilla]
        t = [run[epoch] for run in tract]
        diff = statistics.mean(t) - statistics.mean(v)
        lines.append(f"{epoch + 1:5d}   {_mean_std(v)}   {_mean_std(t)}   {100 * diff:+6.2f}")
    lines += ["", "seed   vanilla   TrAct    TrAct - vanilla (final epoch)"]
    wins = 0
    for seed, v_run, t_run in zip(seeds, vanilla, tract, strict=True):
        diff = t_run[-1] - v_run[-1]
        wins += diff > 0
        lines.append(f"{seed:4d}   {100 * v_run[-1]:7.2f}   {100 * t_run[-1]:6.2f}   {100 * diff:+6.2f}")
    lines.append(f"TrAct ahead at the final epoch for {wins} of {plural(len(seeds), 'seed')}.")
    return "\n".join(lines)


def _save_and_reload(
    result: TrainResult, output_dir: Path, test_inputs: torch.Tensor, recipe: Recipe
) -> tuple[Path, float]:
    """Save the TrAct model in the Hub format, load it back, and compare outputs on ``test_inputs``."""
    model: nn.Module = result.model.eval()
    summary = result.summary
    metadata = TrActMetadata(
        dataset=summary.dataset,
        metrics=summary.final,
        recipe=recipe_to_data(recipe),
        recipe_name=summary.recipe_name,
        epochs=summary.epochs,
    )
    path = save_pretrained(
        model,
        output_dir / CHECKPOINT_NAME,
        architecture=summary.model.architecture,
        model_kwargs=summary.model.kwargs,
        metadata=metadata,
        overwrite=True,
    )
    loaded = from_pretrained(path).eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        expected = model(test_inputs.to(device)).cpu()
        actual = loaded(test_inputs).cpu()
    difference = float((expected - actual).abs().max())
    if not torch.allclose(expected, actual, rtol=0.0, atol=1e-5):
        raise TrActStateError(f"the model reloaded from {path} gives different outputs (max |diff| {difference:.3g})")
    return path, difference


def run_demo(
    output_dir: str | Path = "demo_output",
    *,
    epochs: int = 8,
    seeds: int = 3,
    lam: float = 0.1,
    device: str = "auto",
    save: bool = True,
    show_progress: bool | None = None,
    overrides: Sequence[str] = (),
    threads: int | None = 1,
) -> DemoResult:
    """Train vanilla and TrAct for ``seeds`` seeds, compare, plot, save and reload (see the module docstring).

    ``overrides`` (``KEY=VALUE``) change the demo recipe, e.g. to make it smaller in tests. ``threads``: torch's
    CPU threads while the demo runs (``None``: leave torch's setting). One by default: the model is tiny, and on
    a shared 2-core machine the demo took 1.5 minutes with one thread and 7 with two.
    """
    if seeds < 1 or epochs < 1:
        raise InvalidArgumentError(f"seeds={seeds} and epochs={epochs} must be >= 1")
    if threads is not None and threads < 1:
        raise InvalidArgumentError(f"threads={threads} must be >= 1 (or None for torch's own setting)")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_demo(Path(output_dir), epochs, seeds, lam, device, save, show_progress, overrides)
    finally:
        torch.set_num_threads(previous_threads)


def _run_demo(
    output_dir: Path,
    epochs: int,
    seeds: int,
    lam: float,
    device: str,
    save: bool,
    show_progress: bool | None,
    overrides: Sequence[str],
) -> DemoResult:
    runs_dir = output_dir / "runs"
    seed_list = list(range(seeds))
    curves: dict[str, list[list[float]]] = {"vanilla": [], "tract": []}
    run_dirs: list[Path] = []
    tract_result: TrainResult | None = None
    for seed in seed_list:
        for variant, value in (("vanilla", "null"), ("tract", str(lam))):
            recipe = demo_recipe([*overrides, f"train.epochs={epochs}", f"train.seed={seed}", f"lam={value}"])
            run_dir = runs_dir / f"seed{seed}-{variant}"
            if run_dir.exists():
                logger.info("replacing the previous demo run %s", run_dir)
                shutil.rmtree(run_dir)
            logger.info("demo: seed %d, %s (%s)", seed, variant, plural(epochs, "epoch"))
            result = train(recipe, run_dir, device=device, show_progress=show_progress)
            rows = _read_rows(run_dir)
            curves[variant].append(_curve(rows))
            run_dirs.append(run_dir)
            if variant == "tract" and tract_result is None:
                tract_result = result
    table = format_demo_table(curves, seed_list)
    plot = plot_paired_curves(
        curves, output_dir / "demo.png", title="digits 16x16, ResNet-8: vanilla vs TrAct", seeds=seed_list
    )
    demo = DemoResult(output_dir, table, curves, plot, run_dirs=run_dirs)
    if save and tract_result is not None:
        val = build_datasets(demo_recipe(overrides).data).val
        test_inputs = torch.stack([val[index][0] for index in range(min(256, len(val)))])
        demo.checkpoint, demo.reload_max_abs_diff = _save_and_reload(
            tract_result, output_dir, test_inputs, demo_recipe(overrides)
        )
    return demo


def _read_rows(run_dir: Path) -> list[dict[str, Any]]:
    return RunDirectory(run_dir).read_metrics()

"""Fashion-MNIST benchmark: validation top-1 per epoch, vanilla against TrAct, for the project's two Fashion-MNIST
recipes (``recipes/fashion_mnist_resnet8.yaml``: a CIFAR-style ResNet-8, SGD; ``recipes/fashion_mnist_vit.yaml``:
a small ViT with patch 4, Adam), several seeds, the same seeds in both arms (same initialization, same data
order), trained by the product's trainer (``tract_hub.training.train``) from the recipe files.

The speed-up as the paper reports it: for each seed, the first epoch at which TrAct's validation top-1 reaches
the vanilla run's final top-1 (the vanilla run of the same seed), and the mean and spread of that epoch over the
seeds. Both arms follow the same cosine schedule of ``--epochs`` epochs, so this reads the per-epoch curves of
one schedule; the paper compares separate runs of different lengths.

To fit in an hour on a 2-core CPU, the recipes are trained as they are except for the size of the run:
``--train-samples`` (default the first 10,000 of the 60,000 training images), ``--epochs`` (default 15) and the
full 10,000-image test split as validation. Runs go to ``--jobs`` worker processes (default 2) of
``--threads`` torch threads (default 1): on a shared 2-core machine two threads of one process that wait for each
other were up to 5x slower than one. Measured here: see ``benchmarks/results/fashion_mnist.md`` (it records
the wall time and the machine's load).

Run (needs Fashion-MNIST: ``sudo apt-get install dataset-fashion-mnist``, or ``--data-root DIR``):

    nice .venv/bin/python benchmarks/fashion_mnist.py

Raw lines (one per recipe, arm, seed and epoch: ``recipe``, ``arm``, ``seed``, ``epoch``, ``top1`` in percent, ...)
are appended to ``benchmarks/results/fashion_mnist.jsonl``; a later invocation skips the runs recorded there
(``--fresh`` starts over). The table goes to ``fashion_mnist.md``, the curves to ``fashion_mnist.png``, the
timing of the invocation that trained the runs to ``fashion_mnist.json`` (an invocation that trains nothing
renders the table again with it).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
DEFAULT_RECIPES = ("fashion_mnist_resnet8", "fashion_mnist_vit")
ARMS = ("vanilla", "tract")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def run_one(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Train one (recipe, arm, seed) with the product's trainer; one line per evaluated epoch."""
    from tract_hub.artifacts import RunDirectory
    from tract_hub.training import load_recipe, train

    overrides = [
        f"lam={'null' if job['arm'] == 'vanilla' else job['lam']}",
        f"train.seed={job['seed']}",
        f"train.epochs={job['epochs']}",
        f"data.max_train_samples={job['train_samples']}",
        "train.eval_every=1",
    ]
    if job["val_samples"]:
        overrides.append(f"data.max_val_samples={job['val_samples']}")
    if job["data_root"]:
        overrides.append(f"data.root={json.dumps(job['data_root'])}")
    recipe = load_recipe(RECIPES / f"{job['recipe']}.yaml", overrides)
    start, cpu_start = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="tract-fashion-mnist-") as workdir:
        result = train(recipe, Path(workdir) / "run", device="cpu", show_progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        history = RunDirectory(result.run_dir).read().history
    return [
        {
            "recipe": job["recipe"],
            "arm": job["arm"],
            "lam": recipe.lam,
            "seed": job["seed"],
            "epoch": row["epoch"],
            "top1": round(100 * row["top1"], 4),
            "top5": round(100 * row["top5"], 4),
            "val_loss": row["val_loss"],
            "train_loss": row["train_loss"],
            "epochs": job["epochs"],
            "train_samples": job["train_samples"],
            "val_samples": job["val_samples"] or 10_000,
            "run_wall_s": round(wall, 1),
            "run_cpu_s": round(cpu, 1),
            "threads": job["threads"],
        }
        for row in history
        if row.get("top1") is not None
    ]


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _curves(lines: list[dict], recipe: str, arm: str) -> dict[int, dict[int, float]]:
    """seed -> epoch -> top1 (percent)."""
    curves: dict[int, dict[int, float]] = {}
    for line in lines:
        if line["recipe"] == recipe and line["arm"] == arm:
            curves.setdefault(line["seed"], {})[line["epoch"]] = line["top1"]
    return curves


def summarize(lines: list[dict], recipes: list[str], epochs: int) -> list[dict]:
    """Per recipe: final-epoch mean and std of each arm, the paired difference, and the epochs TrAct needed."""
    table = []
    for recipe in recipes:
        vanilla, tract = _curves(lines, recipe, "vanilla"), _curves(lines, recipe, "tract")
        seeds = sorted(s for s in set(vanilla) & set(tract) if epochs in vanilla[s] and epochs in tract[s])
        if not seeds:
            continue
        reached = {}
        for seed in seeds:
            target = vanilla[seed][epochs]
            reached[seed] = next((e for e in sorted(tract[seed]) if tract[seed][e] >= target), None)
        found = [e for e in reached.values() if e is not None]
        table.append(
            {
                "recipe": recipe,
                "seeds": seeds,
                "epochs": epochs,
                "vanilla": _mean_std([vanilla[s][epochs] for s in seeds]),
                "tract": _mean_std([tract[s][epochs] for s in seeds]),
                "diff": _mean_std([tract[s][epochs] - vanilla[s][epochs] for s in seeds]),
                "tract_wins": sum(tract[s][epochs] > vanilla[s][epochs] for s in seeds),
                "reached": reached,
                "reached_mean_std": _mean_std(found) if found else None,
                "speedup": epochs / statistics.mean(found) if len(found) == len(seeds) else None,
            }
        )
    return table


def render(table: list[dict], meta: dict) -> str:
    lines = [
        "# Fashion-MNIST: vanilla vs TrAct (benchmarks/fashion_mnist.py)",
        "",
        f"Validation top-1 (%) on the {meta['val_samples']:,} test images after epoch {meta['epochs']}, mean ± std "
        f"over seeds {meta['seeds']} (same seeds in both arms); trained on the first {meta['train_samples']:,} "
        f"training images, TrAct λ = {meta['lam']}. Recipes as in recipes/ except the run's size.",
        "",
        "| recipe | vanilla | TrAct | TrAct − vanilla (paired) | TrAct ahead | epoch TrAct reached vanilla's final "
        "top-1, per seed | mean ± std | speed-up |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in table:
        v, t, d = row["vanilla"], row["tract"], row["diff"]
        per_seed = ", ".join(
            f"{seed}: {'not reached' if epoch is None else epoch}" for seed, epoch in row["reached"].items()
        )
        mean, found = row["reached_mean_std"], sum(epoch is not None for epoch in row["reached"].values())
        if found < len(row["reached"]):
            mean_text = f"— ({found} of {len(row['reached'])} seeds reached it)"
        else:
            mean_text = f"{mean[0]:.2f} ± {mean[1]:.2f}"
        speed = "—" if row["speedup"] is None else f"{row['speedup']:.2f}x"
        lines.append(
            f"| {row['recipe']} | {v[0]:.2f} ± {v[1]:.2f} | {t[0]:.2f} ± {t[1]:.2f} | {d[0]:+.2f} ± {d[1]:.2f} | "
            f"{row['tract_wins']}/{len(row['seeds'])} | {per_seed} | {mean_text} | {speed} |"
        )
    lines += [
        "",
        "Speed-up: the run's epochs divided by the mean epoch at which TrAct reached the vanilla run's final "
        "top-1 (— when some seed never reached it). Both arms follow one cosine schedule of the same length, so "
        "this reads one schedule's per-epoch curves, not separate shorter runs as in the paper.",
        "",
        _wall_text(meta) + " Curves: fashion_mnist.png.",
    ]
    return "\n".join(lines) + "\n"


def _wall_text(meta: dict) -> str:
    if meta["wall_min"] is None:
        return "Wall time: not measured (this invocation summarized recorded runs and trained nothing)."
    return (
        f"Wall time: {meta['wall_min']:.1f} min for {meta['runs']} runs ({meta['jobs']} processes x "
        f"{meta['threads']} thread(s); {meta['machine']}; load average over 1/5/15 min {meta['load_before']} "
        f"before, {meta['load_after']} after). CPU time of the runs: {meta['cpu_min']:.1f} min in all, "
        f"{meta['cpu_min'] / meta['jobs']:.1f} min per core: what the benchmark takes on {meta['jobs']} otherwise "
        "idle cores; the wall time is longer when other work shares them."
    )


def plot(lines: list[dict], recipes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(recipes), figsize=(5.5 * len(recipes), 4), squeeze=False)
    for axis, recipe in zip(axes[0], recipes, strict=True):
        for arm, color in zip(ARMS, ("tab:gray", "tab:red"), strict=True):
            curves = _curves(lines, recipe, arm)
            if not curves:
                continue
            epochs = sorted(set.intersection(*(set(c) for c in curves.values())))
            stats = [_mean_std([c[e] for c in curves.values()]) for e in epochs]
            means = [m for m, _ in stats]
            axis.plot(epochs, means, color=color, label=f"{'TrAct' if arm == 'tract' else 'vanilla'} ({len(curves)})")
            axis.fill_between(epochs, [m - s for m, s in stats], [m + s for m, s in stats], color=color, alpha=0.2)
        axis.set_title(recipe)
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation top-1 (%)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _load(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _load_average() -> str:
    try:
        return "/".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - a platform without it
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES), help="recipe names in recipes/")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--train-samples", type=int, default=10_000, help="the first N training images")
    parser.add_argument("--val-samples", type=int, default=None, help="the first N test images (default all)")
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST's folder (default: the recipes' own)")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at the same time (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--output", default=str(RESULTS / "fashion_mnist"), help="path prefix of the result files")
    parser.add_argument("--fresh", action="store_true", help="ignore the runs already recorded in <output>.jsonl")
    args = parser.parse_args()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    raw = output.with_suffix(".jsonl")
    if args.fresh and raw.exists():
        raw.unlink()
    same = {"epochs": args.epochs, "train_samples": args.train_samples}
    lines = [line for line in _load(raw) if all(line.get(k) == v for k, v in same.items())]
    done = {(line["recipe"], line["arm"], line["seed"]) for line in lines if line["epoch"] == args.epochs}
    common = {**same, "val_samples": args.val_samples, "lam": args.lam, "data_root": args.data_root}
    jobs = [
        {"recipe": recipe, "arm": arm, "seed": seed, "threads": args.threads, **common}
        for seed in args.seeds
        for recipe in args.recipes
        for arm in ARMS
        if (recipe, arm, seed) not in done
    ]
    load_before, start = _load_average(), time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, initializer=_init_worker, initargs=(args.threads,)) as pool:
        for run in pool.imap_unordered(run_one, jobs):
            with open(raw, "a") as handle:
                handle.writelines(json.dumps(line, sort_keys=True) + "\n" for line in run)
            lines += run
            last = run[-1]
            print(
                f"{last['recipe']} {last['arm']:7s} seed {last['seed']}: top1 {last['top1']:.2f}% after epoch "
                f"{last['epoch']} ({last['run_wall_s']:.0f} s, CPU {last['run_cpu_s']:.0f} s)",
                flush=True,
            )
    wall = time.perf_counter() - start
    lines = [line for line in lines if line["seed"] in args.seeds and line["recipe"] in args.recipes]
    runs = {(line["recipe"], line["arm"], line["seed"]) for line in lines}
    meta = {
        "epochs": args.epochs,
        "train_samples": args.train_samples,
        "val_samples": args.val_samples or 10_000,
        "seeds": args.seeds,
        "lam": args.lam,
        "jobs": args.jobs,
        "threads": args.threads,
        "runs": len(runs),
        "wall_min": wall / 60 if jobs else None,
        "cpu_min": sum({(x["recipe"], x["arm"], x["seed"]): x.get("run_cpu_s", 0.0) for x in lines}.values()) / 60,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_before": load_before,
        "load_after": _load_average(),
    }
    timing = output.with_suffix(".json")
    if jobs:
        timing.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    elif timing.is_file():  # nothing trained now: the timing of the invocation that trained these runs
        recorded = json.loads(timing.read_text())
        if all(recorded.get(key) == meta[key] for key in ("epochs", "train_samples", "seeds", "runs")):
            meta = recorded
    table = summarize(lines, args.recipes, args.epochs)
    text = render(table, meta)
    print()
    print(text)
    output.with_suffix(".md").write_text(text)
    plot(lines, args.recipes, output.with_suffix(".png"))


if __name__ == "__main__":
    main()

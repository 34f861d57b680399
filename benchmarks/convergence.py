"""Convergence benchmark: the demo setting over several seeds and epoch budgets, vanilla vs TrAct.

For every budget (a full run with a cosine schedule of that many epochs) and seed, the demo recipe is trained
twice through the product's trainer (``tract_hub.training.train``): vanilla (``lam=null``) and TrAct. Printed per
budget: mean and std (over seeds) of the final test accuracy of each, the paired difference (TrAct - vanilla,
same seed: same initialization and data order), how many seeds TrAct won, and the epoch speedup: vanilla's
largest budget divided by the smallest TrAct budget whose mean accuracy reaches vanilla's mean at that budget.

Run (600 training runs of 4 to 32 epochs with the defaults; about an hour on 2 otherwise idle CPU cores):

    nice -n 10 .venv/bin/python benchmarks/convergence.py

Each finished run is appended to benchmarks/results/convergence_runs.jsonl, and a later invocation skips the runs
recorded there (--fresh starts over), so an interrupted benchmark continues where it stopped. Seeds are the outer
loop: after k seeds every budget has k paired results. The summary goes to convergence.json and convergence.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tract_hub.training import train
from tract_hub.training.demo_recipe import demo_recipe

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(epochs: int, seed: int, lam: float | None, workdir: Path) -> dict:
    overrides = [f"train.epochs={epochs}", f"train.seed={seed}", f"lam={'null' if lam is None else lam}"]
    overrides.append(f"train.eval_every={epochs}")  # only the final accuracy is used
    recipe = demo_recipe(overrides)
    start = time.perf_counter()
    result = train(recipe, workdir / f"e{epochs}-s{seed}-{recipe.variant}", device="cpu", show_progress=False)
    return {
        "epochs": epochs,
        "seed": seed,
        "lam": lam,
        "top1": result.summary.final["top1"],
        "wall_s": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs: list[dict], lam: float) -> tuple[list[dict], dict]:
    budgets = sorted({run["epochs"] for run in runs})
    table = []
    for budget in budgets:
        vanilla = {r["seed"]: r["top1"] for r in runs if r["epochs"] == budget and r["lam"] is None}
        tract = {r["seed"]: r["top1"] for r in runs if r["epochs"] == budget and r["lam"] == lam}
        seeds = sorted(set(vanilla) & set(tract))
        diffs = [tract[s] - vanilla[s] for s in seeds]
        table.append(
            {
                "epochs": budget,
                "seeds": len(seeds),
                "vanilla": _mean_std([vanilla[s] for s in seeds]),
                "tract": _mean_std([tract[s] for s in seeds]),
                "diff": _mean_std(diffs),
                "min_diff": min(diffs),
                "tract_wins": sum(d > 0 for d in diffs),
            }
        )
    largest = table[-1]
    reached = [row["epochs"] for row in table if row["tract"][0] >= largest["vanilla"][0]]
    speedup = {
        "vanilla_budget": largest["epochs"],
        "vanilla_mean": largest["vanilla"][0],
        "smallest_matching_tract_budget": min(reached) if reached else None,
        "speedup": largest["epochs"] / min(reached) if reached else None,
    }
    return table, speedup


def render(table: list[dict], speedup: dict, lam: float, wall_s: float) -> str:
    lines = [
        f"Convergence on the demo setting (digits 16x16 + fixed per-image contrast/brightness, ResNet-8, SGD 0.08, "
        f"cosine; TrAct lam={lam}); final test top-1 in %, mean ± std over seeds",
        "",
        "| epochs | seeds | vanilla | TrAct | TrAct - vanilla (paired) | min diff | TrAct wins |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table:
        v, t, d = row["vanilla"], row["tract"], row["diff"]
        lines.append(
            f"| {row['epochs']} | {row['seeds']} | {100 * v[0]:.2f} ± {100 * v[1]:.2f} | "
            f"{100 * t[0]:.2f} ± {100 * t[1]:.2f} | {100 * d[0]:+.2f} ± {100 * d[1]:.2f} | "
            f"{100 * row['min_diff']:+.2f} | {row['tract_wins']}/{row['seeds']} |"
        )
    lines.append("")
    if speedup["speedup"] is None:
        lines.append(
            f"Epoch speedup: no TrAct budget reached vanilla's {speedup['vanilla_budget']}-epoch mean "
            f"({100 * speedup['vanilla_mean']:.2f}%)."
        )
    else:
        lines.append(
            f"Epoch speedup: TrAct at {speedup['smallest_matching_tract_budget']} epochs reaches vanilla's "
            f"{speedup['vanilla_budget']}-epoch mean ({100 * speedup['vanilla_mean']:.2f}%): "
            f"{speedup['speedup']:.2f}x fewer epochs."
        )
    lines.append(
        f"Wall time of all runs: {wall_s / 60:.1f} min (on a shared machine; not a measure of TrAct's overhead)."
    )
    return "\n".join(lines) + "\n"


def _load_runs(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="4,8,16,32", help="epoch budgets, comma-separated")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--output", default=str(RESULTS / "convergence"), help="path prefix of the result files")
    parser.add_argument("--fresh", action="store_true", help="ignore the runs already recorded in <output>_runs.jsonl")
    parser.add_argument("--report-only", action="store_true", help="summarize the recorded runs, train nothing")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: this small model gains little from more, and on a busy machine two "
        "threads that wait for each other were 3x slower than one)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    budgets = [int(b) for b in args.budgets.split(",")]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    runs_path = output.with_name(output.name + "_runs.jsonl")
    if args.fresh and runs_path.exists():
        runs_path.unlink()
    runs = _load_runs(runs_path)
    done = {(r["epochs"], r["seed"], r["lam"]) for r in runs}
    if not args.report_only:
        with tempfile.TemporaryDirectory(prefix="tract-convergence-") as workdir:
            # seed-major order: after k seeds, every budget has k paired results
            for seed in range(args.seeds):
                for budget in budgets:
                    for lam in (None, args.lam):
                        if (budget, seed, lam) in done:
                            continue
                        run = run_one(budget, seed, lam, Path(workdir))
                        runs.append(run)
                        with open(runs_path, "a") as handle:
                            handle.write(json.dumps(run, sort_keys=True) + "\n")
                        print(
                            f"epochs {budget:3d} seed {seed} {'vanilla' if lam is None else 'tract  '} "
                            f"top1 {100 * run['top1']:.2f}  ({run['wall_s']:.0f}s)",
                            flush=True,
                        )
    runs = [r for r in runs if r["epochs"] in budgets and r["seed"] < args.seeds and r["lam"] in (None, args.lam)]
    wall = sum(r["wall_s"] for r in runs)
    table, speedup = summarize(runs, args.lam)
    text = render(table, speedup, args.lam, wall)
    print()
    print(text)
    payload = {"lam": args.lam, "budgets": budgets, "seeds": args.seeds, "runs": runs, "table": table}
    payload.update({"speedup": speedup, "train_wall_s": wall})
    output.with_suffix(".json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    output.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()

"""``tract-hub train RECIPE [--set KEY=VALUE ...]``: train one recipe (one process, or one per GPU under torchrun)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a recipe (vanilla with --set lam=null)",
        description=(
            "Train one recipe into a run directory (recipe.yaml, environment.json, metrics.jsonl, summary.json, "
            "checkpoints/, plots/). Data parallel: torchrun --nproc_per_node=N -m tract_hub.cli train RECIPE "
            "(train.batch_size stays the total batch per optimizer step, split over the N processes)."
        ),
    )
    parser.add_argument("recipe", help="a recipe YAML file (or, with --resume, a run directory)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, the value read as YAML (e.g. --set lam=null --set train.epochs=10)",
    )
    parser.add_argument("--data-root", help="directory of the data sets (sets data.root)")
    parser.add_argument("--run-dir", help="run directory (default: runs/<recipe name>-<tract|vanilla>)")
    parser.add_argument("--resume", action="store_true", help="continue the run directory from its last checkpoint")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="default: cuda if present")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..artifacts.run_dir import RunDirectory
    from ..training import default_run_dir, dump_recipe, load_recipe, train

    recipe_path = Path(args.recipe)
    run_dir = args.run_dir
    if recipe_path.is_dir() and RunDirectory(recipe_path).recipe_path.is_file():
        if not args.resume:
            print(f"tract-hub train: {recipe_path} is a run directory; add --resume to continue it", file=sys.stderr)
            return 2
        run_dir = run_dir or str(recipe_path)
        recipe_path = RunDirectory(recipe_path).recipe_path
    overrides = list(args.overrides)
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    recipe = load_recipe(recipe_path, overrides)
    if args.dry_run:
        from ..training.preflight import preflight

        preflight(recipe)
        print(dump_recipe(recipe), end="")
        return 0
    result = train(recipe, run_dir or default_run_dir(recipe), resume=args.resume, device=args.device)
    if not result.is_main:
        return 0
    summary = result.summary
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(summary.final.items()) if isinstance(v, float))
    print(f"{result.run_dir}: {summary.epochs} epochs, {shown or 'no evaluation'}")
    if summary.diverged_at_epoch is not None:
        print(f"tract-hub train: training diverged in epoch {summary.diverged_at_epoch} (see {result.run_dir})")
        return 1
    return 0

"""``tract-hub train [RECIPE] [--model ARCH --data DATASET --epochs N ...] [--set KEY=VALUE ...]``: train one recipe
(one process, or one per GPU under torchrun), given as a YAML file, as flags, or both."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .recipe_flags import add_recipe_flags, flag_hint, missing_for_flags_only, recipe_data


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a recipe (a YAML file or flags; vanilla with --lam none)",
        description=(
            "Train one recipe into a run directory (recipe.yaml, environment.json, metrics.jsonl, summary.csv, "
            "summary.json, checkpoints/, plots/, tensorboard/). The recipe is a YAML file, or flags alone "
            "(tract-hub train --model timm:resnet50 --data image_folder --data-root DIR --img-size 224 --epochs 10), "
            "or a file with flags over it. Data parallel: torchrun --nproc_per_node=N -m tract_hub.cli train ... "
            "(--batch-size stays the total batch per optimizer step, split over the N processes)."
        ),
    )
    parser.add_argument("recipe", nargs="?", help="a recipe YAML file (or, with --resume, a run directory)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, the value read as YAML (e.g. --set lam=null --set train.epochs=10)",
    )
    parser.add_argument("--run-dir", help="run directory (default: runs/<recipe name>-<tract|vanilla>)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run directory from its last checkpoint (--epochs N / --set train.epochs=N trains longer)",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="default: cuda if present")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")
    add_recipe_flags(parser)
    report = parser.add_argument_group("reporting", "how the run reports (not part of the recipe)")
    report.add_argument(
        "--log-interval", type=int, default=50, metavar="N", help="optimizer steps between log lines (default 50)"
    )
    report.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TensorBoard event files in RUN_DIR/tensorboard (default: when the tensorboard package is installed)",
    )
    report.add_argument("--wandb", action="store_true", help="log to Weights & Biases (needs the wandb package)")
    report.add_argument("--wandb-project", metavar="NAME", help="W&B project (default: tract-hub)")
    parser.set_defaults(handler=run)


def _recipe(args: argparse.Namespace):  # -> Recipe (training is imported only when a command runs)
    from ..errors import RecipeError
    from ..training.recipe import read_recipe_data, recipe_from_data, resolve_recipe_path

    if args.recipe is None:
        missing = missing_for_flags_only(args)
        if missing:
            raise RecipeError(
                f"no RECIPE file and no {', '.join(missing)}: give a recipe YAML file, or the flags of one "
                "(e.g. tract-hub train --model timm:resnet18 --data cifar10 --data-root DIR --epochs 10)"
            )
        base, source = None, "the recipe flags"
    else:
        path = resolve_recipe_path(args.recipe)
        base, source = read_recipe_data(path), str(path)
        if not isinstance(base, dict):
            raise RecipeError(f"{path} must be a mapping of keys to values, not {type(base).__name__}")
    try:
        return recipe_from_data(recipe_data(args, base), args.overrides, source=source)
    except RecipeError as error:
        raise RecipeError(f"{error}{flag_hint(str(error))}") from None


def run(args: argparse.Namespace) -> int:
    from ..artifacts.run_dir import RunDirectory
    from ..errors import InvalidArgumentError
    from ..training import default_run_dir, dump_recipe, train
    from ..training.progress import format_scores
    from ..training.sinks import ReportOptions

    run_dir = args.run_dir
    if args.recipe is not None and Path(args.recipe).is_dir() and RunDirectory(args.recipe).recipe_path.is_file():
        if not args.resume:
            print(f"tract-hub train: {args.recipe} is a run directory; add --resume to continue it", file=sys.stderr)
            return 2
        run_dir = run_dir or args.recipe
        args.recipe = str(RunDirectory(args.recipe).recipe_path)
    recipe = _recipe(args)
    if args.dry_run:
        from ..training.preflight import preflight

        preflight(recipe)
        print(dump_recipe(recipe), end="")
        return 0
    if args.log_interval < 1:
        raise InvalidArgumentError(f"--log-interval {args.log_interval}: give a positive number of steps")
    report = ReportOptions(
        log_interval=args.log_interval, tensorboard=args.tensorboard, wandb=args.wandb, wandb_project=args.wandb_project
    )
    result = train(recipe, run_dir or default_run_dir(recipe), resume=args.resume, device=args.device, report=report)
    if not result.is_main:
        return 0
    summary = result.summary
    done = f"{summary.epochs} epoch{'' if summary.epochs == 1 else 's'}"
    shown = format_scores(summary.final, [key for key in summary.final if key != "train_loss"])
    train_loss = summary.final.get("train_loss")
    trained = f", train_loss {train_loss:.4f}" if isinstance(train_loss, float) else ""
    print(f"{result.run_dir}: {done}, " + (f"validation {shown}{trained}" if shown else "no evaluation"))
    if summary.diverged_at_epoch is not None:
        print(f"tract-hub train: training diverged in epoch {summary.diverged_at_epoch} (see {result.run_dir})")
        return 1
    return 0

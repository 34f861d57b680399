"""``tract-hub demo``: vanilla vs TrAct on digits (no download), table, plot, Hub checkpoint saved and reloaded."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train a small model with and without TrAct on digits and compare (a few minutes on CPU)",
        description=(
            "Train a CIFAR-style ResNet-8 on scikit-learn's digits (16x16, fixed per-image contrast/brightness "
            "changes) with and without TrAct, same seeds, and compare: table, plot, and the TrAct model saved "
            "in the Hub format and loaded back."
        ),
    )
    parser.add_argument("--output-dir", default="demo_output", help="where runs, plot and checkpoint go")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (default 8)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    parser.add_argument("--lam", type=float, default=0.1, help="TrAct's lambda (default 0.1)")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--no-save", action="store_true", help="do not save and reload the TrAct checkpoint")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the model is tiny, and one thread ran the demo several times faster "
        "than two on a busy 2-core machine; 0 keeps torch's own setting)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ..demo import run_demo

    start = time.perf_counter()
    result = run_demo(
        args.output_dir,
        epochs=args.epochs,
        seeds=args.seeds,
        lam=args.lam,
        device=args.device,
        save=not args.no_save,
        threads=args.threads or None,
    )
    print(result.table)
    print()
    print(f"plot: {result.plot}")
    if result.checkpoint is not None:
        print(
            f"TrAct checkpoint (Hub format): {result.checkpoint}; reloaded with tract_hub.from_pretrained, "
            f"outputs match (max |diff| {result.reload_max_abs_diff:.1e})"
        )
    print(f"runs: {args.output_dir}/runs (tract-hub compare {args.output_dir}/runs/*)")
    print(f"time: {time.perf_counter() - start:.0f}s")
    return 0

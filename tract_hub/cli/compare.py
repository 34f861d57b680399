"""``tract-hub compare RUN_DIR...``: a table of several runs and a plot of accuracy against epochs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="table and plot of several runs (vanilla and TrAct overlaid)",
        description="Print a table of the runs' final and best accuracy (or mAP) and plot it against epochs.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by tract-hub train")
    parser.add_argument("--plot", default="compare.png", help="where to write the plot (default: compare.png)")
    parser.add_argument("--no-plot", action="store_true", help="print the table only")
    parser.add_argument("--title", default="", help="plot title")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.compare import compare_runs

    plot = None if args.no_plot else args.plot
    print(compare_runs(args.run_dirs, plot, title=args.title))
    if plot is not None:
        print(f"plot: {plot}")
    return 0

"""The ``tract-hub`` command line: thin wrappers over the library's public functions.

Each subcommand lives in its own module of this package, which defines ``register(subparsers)``; the
parser it adds sets ``handler`` to a function ``handler(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

#: Subcommand modules, in the order ``tract-hub --help`` lists them.
SUBCOMMAND_MODULES = ("demo", "train", "eval", "compare", "locate", "hub")


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="tract-hub",
        description="TrAct for timm and torchvision models: patch, train, compare, publish.",
    )
    parser.add_argument("--version", action="version", version=f"tract-hub {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tract-hub``; returns the exit status (141 when the reader of its output went away)."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here (also after --help), not at interpreter exit
    except BrokenPipeError:
        return _reader_went_away()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s" if not args.verbose else "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    from ..errors import TrActError

    try:
        return int(args.handler(args) or 0)
    except TrActError as error:
        if os.environ.get("TRACT_HUB_TRACEBACK"):
            raise
        print(f"tract-hub {args.command}: error: {error}", file=sys.stderr)
        return 1


#: The exit status of a command whose reader closed the pipe (as a shell reports a process killed by SIGPIPE).
BROKEN_PIPE_STATUS = 128 + 13


def _reader_went_away() -> int:
    """``tract-hub ... | head`` stopped reading: end quietly, as command-line tools do.

    Standard output is pointed at ``os.devnull`` so that the interpreter's final flush does not fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass
    return BROKEN_PIPE_STATUS


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

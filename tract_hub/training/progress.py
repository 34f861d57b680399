"""Progress bars (tqdm, with ETA) for long work, quiet where nobody watches.

Bars show only on the main rank, when stderr is a terminal and ``CI`` is not set.

Example:
    >>> for _ in progress(range(3), desc="demo", enabled=False):
    ...     pass
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_wanted() -> bool:
    """True on an interactive terminal outside CI (``CI`` unset or false)."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, enabled: bool | None = None) -> Iterator[T]:
    """``iterable`` with a tqdm bar when ``enabled`` (default: :func:`progress_wanted`)."""
    if enabled is None:
        enabled = progress_wanted()
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True) as bar:
        yield from bar

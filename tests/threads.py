"""One torch thread for a test's tiny forward and backward passes: on a busy 2-core machine two OpenMP threads
that wait for each other made them up to ten times slower than one. The previous setting is restored after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

"""The model tests run single-threaded, as the training tests do: on a busy 2-core machine two torch threads that
wait for each other made the suite's forward and backward passes up to ten times slower than one thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_threaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CI", "true")  # no progress bars in the trainer's runs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

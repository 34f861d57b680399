"""Shared fixtures of the registry tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test's tiny real forward/backward on one CPU thread (OpenMP threads only wait on each other at this
    size, badly so on a busy machine); the previous setting is restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

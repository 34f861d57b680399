"""The model tests run single-threaded and quiet, as the training tests do (see :mod:`tests.threads`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _quiet_single_threaded(quiet: None, one_thread: None) -> None:
    """Every test of this package: one torch thread, no progress bars."""

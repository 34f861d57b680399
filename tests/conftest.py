"""Fixtures shared by the test packages: one torch thread, and no progress bars."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.threads import single_thread


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run the test on one torch thread (see :mod:`tests.threads`)."""
    with single_thread():
        yield


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No progress bars in the trainer's runs (as on CI)."""
    monkeypatch.setenv("CI", "true")

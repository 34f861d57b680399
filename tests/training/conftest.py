"""Fixtures of the training tests: tiny data sets on disk in their real formats, and quick digits recipes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from . import builders


@pytest.fixture(autouse=True)
def _quiet_single_threaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No progress bars; one torch thread (the models are tiny, and on a busy 2-core machine two threads that
    wait for each other were several times slower than one)."""
    monkeypatch.setenv("CI", "true")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    builders.write_tiny_cifar(tmp_path, "cifar10", train=20, test=10)
    return tmp_path


@pytest.fixture
def image_folder_root(tmp_path: Path) -> Path:
    return builders.write_image_folder(tmp_path / "folder", classes=("cat", "dog", "fox"), per_class=3)


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    return builders.write_tiny_voc(tmp_path / "voc")

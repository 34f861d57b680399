"""Fixtures of the training tests: tiny data sets on disk in their real formats, and quick digits recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import builders


@pytest.fixture(autouse=True)
def _quiet_single_threaded(quiet: None, one_thread: None) -> None:
    """Every test of this package: one torch thread (see :mod:`tests.threads`), no progress bars."""


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

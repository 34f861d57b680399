"""Fixtures of the hub tests: a saved small timm checkpoint, and huggingface_hub offline with an empty cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tract_hub.models import create_model


@pytest.fixture(scope="session")
def saved_timm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved ``timm:test_resnet`` (3 classes, lam 0.1 on conv1.0 recorded); copy it before changing it."""
    import tract_hub

    torch.manual_seed(0)
    model = create_model("timm:test_resnet", num_classes=3)
    metadata = {"lam": 0.1, "first_layers": ["conv1.0"]}
    return tract_hub.save_pretrained(model, tmp_path_factory.mktemp("saved") / "test_resnet", metadata=metadata)


@pytest.fixture
def checkpoint_copy(saved_timm: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`saved_timm` that a test may damage."""
    return Path(shutil.copytree(saved_timm, tmp_path / "checkpoint"))


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """huggingface_hub in offline mode with an empty cache of its own (as HF_HUB_OFFLINE=1 / HF_HUB_CACHE do)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache

"""The real Fashion-MNIST files of Debian's ``dataset-fashion-mnist`` package (CI installs it; ``.ci/run``).

Skipped, naming the command that installs them, where the files are absent. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tract_hub.artifacts.datasets import DEBIAN_FASHION_MNIST
from tract_hub.cli import main
from tract_hub.training.data import build_datasets, fashion_mnist
from tract_hub.training.recipe import DataConfig

pytestmark = pytest.mark.skipif(
    not fashion_mnist.holds_files(DEBIAN_FASHION_MNIST),
    reason=f"Fashion-MNIST is not in {DEBIAN_FASHION_MNIST}: sudo apt-get install dataset-fashion-mnist",
)

#: (split, images, images per class): the release's 60,000 / 10,000 images, balanced over the 10 classes.
SPLITS = [("train", 60_000, 6_000), ("test", 10_000, 1_000)]
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def splits() -> fashion_mnist.FashionMnistSplits:
    return fashion_mnist.read_fashion_mnist(DEBIAN_FASHION_MNIST)


@pytest.mark.parametrize(("split", "count", "per_class"), SPLITS, ids=[s[0] for s in SPLITS])
def test_sizes_and_images_per_class(split: str, count: int, per_class: int, splits) -> None:
    data = getattr(splits, split)
    assert tuple(data.data.shape) == (count, 28, 28) and data.data.dtype == torch.uint8
    assert torch.bincount(data.targets, minlength=10).tolist() == [per_class] * 10
    assert data.classes == CLASSES


def test_the_recipe_finds_debians_folder_without_a_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRACT_HUB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    data = build_datasets(DataConfig(dataset="fashion_mnist", max_val_samples=100))
    assert (len(data.train), len(data.val), data.num_classes, data.in_chans) == (60_000, 100, 10, 1)
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


@pytest.mark.slow  # reads and trains on the real files
def test_train_command_as_a_user_types_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``tract-hub train --model timm:tract_resnet8_cifar --data fashion_mnist ...`` (a few hundred images)."""
    run = tmp_path / "run"
    arguments = ["train", "--model", "timm:tract_resnet8_cifar", "--data", "fashion_mnist", "--epochs", "1"]
    arguments += ["-b", "64", "--set", "data.max_train_samples=256", "--set", "data.max_val_samples=128"]
    assert main([*arguments, "--run-dir", str(run), "--device", "cpu"]) == 0
    assert f"{run}: 1 epoch, validation top1 " in capsys.readouterr().out
    assert (run / "checkpoints" / "best" / "model.safetensors").is_file()

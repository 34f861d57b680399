"""Fashion-MNIST read by torchvision's FashionMNIST from the layouts users have (Debian's gzipped files,
torchvision's own folder), found where the recipe says, refused clearly when missing or damaged.

The files are made by the test in the real idx format (tiny); ``test_data_fashion_mnist_real.py`` reads Debian's.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest
import torch

from tract_hub.artifacts import datasets
from tract_hub.errors import DataError
from tract_hub.training.data import build_datasets, fashion_mnist
from tract_hub.training.recipe import DataConfig

from .builders import idx_bytes, write_tiny_fashion_mnist

LAYOUTS = ["debian", "torchvision", "torchvision_gz"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_both_splits(layout: str, tmp_path: Path) -> None:
    root = write_tiny_fashion_mnist(tmp_path / "data", train=30, test=20, layout=layout)
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    splits = build_datasets(DataConfig(dataset="fashion_mnist", root=str(root), augment="cifar"))
    assert (len(splits.train), len(splits.val), splits.num_classes, splits.in_chans) == (30, 20, 10, 1)
    image, label = splits.val[3]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label == 3
    assert splits.train[0][0].shape == (1, 28, 28)  # the cifar crop keeps the images' own 28x28
    expected = (torch.as_tensor(splits.val.data[3], dtype=torch.float32) / 255 - 0.2860) / 0.3530
    assert torch.allclose(image[0], expected, atol=1e-6)  # the table's statistics, ToTensor's scale
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before  # nothing written there


def test_without_a_root_the_environment_then_debians_folder_are_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian = write_tiny_fashion_mnist(tmp_path / "usr-share", train=12, test=6)
    row = dataclasses.replace(datasets.DATASETS["fashion_mnist"], default_root=str(debian))
    monkeypatch.setitem(datasets.DATASETS, "fashion_mnist", row)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACT_HUB_DATA", str(tmp_path / "cifar-only"))  # set, but without Fashion-MNIST
    assert len(build_datasets(DataConfig(dataset="fashion_mnist")).train) == 12
    write_tiny_fashion_mnist(tmp_path / "cifar-only", train=8, test=4)
    assert len(build_datasets(DataConfig(dataset="fashion_mnist")).train) == 8  # $TRACT_HUB_DATA first


def test_missing_files_name_the_apt_command_and_the_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    row = dataclasses.replace(datasets.DATASETS["fashion_mnist"], default_root=str(tmp_path / "not-installed"))
    monkeypatch.setitem(datasets.DATASETS, "fashion_mnist", row)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACT_HUB_DATA", raising=False)
    with pytest.raises(DataError) as error:
        build_datasets(DataConfig(dataset="fashion_mnist"))
    message = str(error.value)
    assert "not-installed" in message and "train-images-idx3-ubyte.gz" in message
    assert "sudo apt-get install dataset-fashion-mnist" in message and "--set data.download=true" in message
    with pytest.raises(DataError, match=r"in \S*/empty-root; .*apt-get install dataset-fashion-mnist"):
        build_datasets(DataConfig(dataset="fashion_mnist", root=str(tmp_path / "empty-root")))


def test_download_goes_to_a_writable_root_never_the_system_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = dataclasses.replace(datasets.DATASETS["fashion_mnist"], default_root=str(tmp_path / "not-installed"))
    monkeypatch.setitem(datasets.DATASETS, "fashion_mnist", row)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACT_HUB_DATA", raising=False)
    asked = []

    def download(root: Path) -> None:  # torchvision's download, without the network: its layout, its files
        asked.append(Path(root))
        write_tiny_fashion_mnist(Path(root), train=10, test=5, layout="torchvision")

    monkeypatch.setattr(fashion_mnist, "download", download)
    splits = build_datasets(DataConfig(dataset="fashion_mnist", download=True))
    assert asked == [Path("data")] and len(splits.train) == 10  # ./data, the default writable root
    build_datasets(DataConfig(dataset="fashion_mnist", download=True))
    assert len(asked) == 1  # found there the second time: not downloaded again


def _damage(root: Path, how: str) -> None:
    path = root / "t10k-labels-idx1-ubyte.gz"
    if how == "not gzip":
        path.write_bytes(b"plain bytes")
    elif how == "bad magic":
        path.write_bytes(gzip.compress(b"\x00\x00\x0c\x01" + b"\x00\x00\x00\x14" + bytes(20)))
    elif how == "label 10":
        labels = torch.full((20,), 10, dtype=torch.uint8).numpy()
        path.write_bytes(gzip.compress(idx_bytes(labels)))
    elif how == "fewer labels":
        path.write_bytes(gzip.compress(idx_bytes(torch.zeros(5, dtype=torch.uint8).numpy())))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("not gzip", "not a readable gzip file"),
        ("bad magic", "does not hold readable Fashion-MNIST idx files"),
        ("label 10", "labels outside 0..9"),
        ("fewer labels", "5 labels for 20 images"),
    ],
)
def test_damaged_files_are_the_projects_error(how: str, message: str, tmp_path: Path) -> None:
    root = write_tiny_fashion_mnist(tmp_path / "data", train=30, test=20)
    _damage(root, how)
    with pytest.raises(DataError, match=message):
        build_datasets(DataConfig(dataset="fashion_mnist", root=str(root)))


def test_train_command_on_files_in_the_real_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command a user types, on tiny files: the model gets the data set's one input channel by itself."""
    from tract_hub.cli import main

    root = write_tiny_fashion_mnist(tmp_path / "data", train=64, test=32)
    run = tmp_path / "run"
    arguments = ["train", "--model", "timm:tract_resnet8_cifar", "--data", "fashion_mnist", "--data-root", str(root)]
    assert main([*arguments, "--epochs", "1", "-b", "32", "--run-dir", str(run), "--device", "cpu"]) == 0
    assert f"{run}: 1 epoch, validation top1 " in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"]["kwargs"] == {"in_chans": 1, "num_classes": 10} and summary["dataset"] == "fashion_mnist"

"""What is published is machine-independent and true (DESIGN decision 7).

A run trained with an absolute data root under a home directory, fine-tuned from a local checkpoint, and pushed
with ``tract-hub push RUN --dry-run --folder DIR``: no file of the folder holds the data root, the home directory,
the user or the host name. A checkpoint of a model that was never trained does not claim any training, and no
``config.json`` claims the source of timm's released weights.
"""

from __future__ import annotations

import json
import platform
import socket
from pathlib import Path

import pytest

import tract_hub
from tract_hub.artifacts.publish import WEIGHT_SOURCE_KEYS
from tract_hub.cli import main
from tract_hub.hub import parse_front_matter
from tract_hub.models import create_model

REPO = Path(__file__).resolve().parents[2]
QUICK = ["data.digits.size=8", "model.kwargs.width=4", "data.max_train_samples=128", "data.max_val_samples=64"]
HOST, USER = "host-8c1d0e7a", "alice3f9c"


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory, user and host name that appear nowhere else."""
    home = tmp_path / f"home-of-{USER}"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USER", USER)
    monkeypatch.setattr(socket, "gethostname", lambda: HOST)
    monkeypatch.setattr(platform, "node", lambda: HOST)
    monkeypatch.setenv("CI", "true")
    return home


def _train(home: Path, name: str, *extra: str) -> Path:
    sets = [arg for item in (*QUICK, "train.epochs=1", "train.batch_size=32", *extra) for arg in ("--set", item)]
    run = home / "runs" / name
    data_root = home / "data-root-7f3a"
    arguments = ["train", str(REPO / "recipes" / "demo_digits.yaml"), *sets, "--data-root", str(data_root)]
    assert main([*arguments, "--run-dir", str(run), "--device", "cpu"]) == 0
    assert str(data_root) in (run / "recipe.yaml").read_text()  # stored absolute, for --resume from anywhere
    return run


def _push(run: Path, folder: Path, *extra: str) -> Path:
    assert main(["push", str(run), "--repo", "org/digits", "--dry-run", "--folder", str(folder), *extra]) == 0
    return folder


def _machine_strings_in(folder: Path, home: Path) -> list[str]:
    strings = [str(home), home.name, "data-root-7f3a", HOST, USER, str(home.parent)]
    found = []
    for path in sorted(folder.rglob("*")):
        content = path.read_bytes() if path.is_file() else b""
        found += [f"{path.name}: {item}" for item in strings if item.encode() in content]
    return found


def test_a_pushed_folder_holds_no_path_user_or_host_of_the_machine(machine: Path, capsys) -> None:
    run = _train(machine, "pretrain")
    published = _push(run, machine / "hub" / "pretrain")
    fine_tuned = _train(
        machine, "finetune", "model.architecture=null", "model.kwargs={}", f"model.init={published}", "lam=null"
    )
    assert str(published) in (fine_tuned / "recipe.yaml").read_text()
    again = _push(fine_tuned, machine / "hub" / "finetune")
    capsys.readouterr()
    for folder in (published, again):
        assert sorted(p.name for p in folder.iterdir()) == [
            "README.md", "config.json", "model.safetensors", "training_curves.png"
        ]  # fmt: skip
        assert _machine_strings_in(folder, machine) == []
    recipe = json.loads((again / "config.json").read_text())["tract_hub"]["recipe"]
    assert recipe["model"]["init"] == "pretrain" and "root" not in recipe["data"]  # the folder's name only


def test_a_card_shows_the_sections_that_apply_and_metrics_in_percent(machine: Path, capsys) -> None:
    folder = _push(_train(machine, "run"), machine / "hub" / "run")
    capsys.readouterr()
    card = (folder / "README.md").read_text()
    recipe = card.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "digits:" in recipe and "detection:" not in recipe and "train_split" not in recipe
    top1 = json.loads((folder / "config.json").read_text())["tract_hub"]["metrics"]["top1"]
    assert f"| Final top1 | {100 * top1:.2f}% |" in card
    assert "pip install tract-hub" not in card and "tract_hub is not on PyPI" in card


def test_an_untrained_model_claims_no_training_nor_timms_weights(tmp_path: Path) -> None:
    model = tract_hub.patch(create_model("timm:resnet18", num_classes=3), lam=0.1)
    folder = tract_hub.save_pretrained(model, tmp_path / "fresh")
    card = (folder / "README.md").read_text()
    assert "trained with TrAct" not in card and "trained on" not in card
    assert "no training recorded (TrAct λ = 0.1 installed)" in card
    assert "records no training (no recipe, epochs or metrics)" in card
    assert "license" not in parse_front_matter(card) or parse_front_matter(card)["license"] == "mit"
    pretrained_cfg = json.loads((folder / "config.json").read_text())["pretrained_cfg"]
    assert not WEIGHT_SOURCE_KEYS & set(pretrained_cfg)  # no "a1_in1k" tag, nor its license and paper
    assert create_model("timm:resnet18").pretrained_cfg["tag"] == "a1_in1k"  # what timm's own cfg would claim


@pytest.mark.parametrize(("checkpoint", "expected"), [("best", 0.9), ("last", 0.85), (None, 0.85)])
def test_the_model_index_reports_the_weights_the_checkpoint_holds(checkpoint: str | None, expected: float) -> None:
    """A run's ``best`` checkpoint is published with the best epoch's scores, not the last epoch's."""
    from tract_hub.artifacts import TrActMetadata
    from tract_hub.hub.card import CardInfo, front_matter
    from tract_hub.pretrained.spec import ArchitectureSpec

    metadata = TrActMetadata(
        dataset="fashion_mnist", checkpoint=checkpoint, best={"epoch": 2, "top1": 0.9}, metrics={"top1": 0.85}
    )
    front = front_matter(CardInfo(name="m", spec=ArchitectureSpec("timm", "resnet18"), metadata=metadata))
    (metric,) = front["model-index"][0]["results"][0]["metrics"]
    assert metric["type"] == "accuracy" and metric["value"] == expected

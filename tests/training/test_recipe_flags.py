"""tract-hub train's recipe flags: the same validated recipe as the YAML file, saved next to the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tract_hub.cli import main

FLAGS = [
    "--model", "timm:tract_resnet8_cifar", "--data", "image_folder", "--data-root", "DATA", "--img-size", "8",
    "--epochs", "1", "-b", "6", "--opt", "adamw", "--lr", "0.001", "--wd", "0.05", "--warmup-epochs", "0.5",
    "--smoothing", "0.1", "--lam", "0.2", "--model-ema-decay", "0.99", "--set", "model.kwargs.width=4",
]  # fmt: skip
YAML = """
name: tract_resnet8_cifar-image_folder
lam: 0.2
model: {architecture: "timm:tract_resnet8_cifar", kwargs: {width: 4}}
data: {dataset: image_folder, root: DATA, image_size: 8}
train: {epochs: 1, batch_size: 6, label_smoothing: 0.1, ema: {decay: 0.99}}
optimizer: {name: adamw, lr: 0.001, weight_decay: 0.05}
schedule: {warmup_epochs: 0.5}
"""


def _resolved(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["train", *arguments, "--dry-run"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_flags_give_the_recipe_of_the_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path.resolve())
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(YAML.replace("DATA", root))
    from_flags = _resolved([arg.replace("DATA", root) for arg in FLAGS], capsys)
    assert from_flags == _resolved([str(recipe)], capsys)
    assert from_flags["train"]["ema"] == {"decay": 0.99, "warmup": False}


def test_flags_over_a_file_then_set(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = ["recipes/demo_digits.yaml", "--epochs", "3", "--lam", "none", "--set", "train.epochs=4"]
    resolved = _resolved([*arguments, "--data-root", "relative/data"], capsys)
    assert resolved["train"]["epochs"] == 4 and resolved["lam"] is None and resolved["name"] == "demo_digits"
    assert resolved["data"]["root"] == str(Path("relative/data").resolve())  # stored absolute


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "timm:resnet18"], "no RECIPE file and no --data, --epochs: give a recipe YAML file"),
        (
            ["--model", "timm:resnet18", "--data", "image_folder", "--epochs", "1"],
            "data.image_size is required for dataset='image_folder' (the images must be batched at one size) "
            "(--img-size sets data.image_size)",
        ),
        (["recipes/demo_digits.yaml", "--lam", "x"], None),  # argparse: not a number
    ],
)
def test_flag_errors_name_the_flag(arguments, message, capsys: pytest.CaptureFixture[str]) -> None:
    if message is None:
        with pytest.raises(SystemExit):
            main(["train", *arguments])
        assert "'x' is not a number (or 'none' for the vanilla run)" in capsys.readouterr().err
        return
    assert main(["train", *arguments]) == 1
    assert message in capsys.readouterr().err


def test_model_ema_flags_do_not_leak_into_the_next_command(capsys: pytest.CaptureFixture[str]) -> None:
    first = _resolved(["recipes/demo_digits.yaml", "--model-ema", "--model-ema-decay", "0.5"], capsys)
    second = _resolved(["recipes/demo_digits.yaml", "--model-ema"], capsys)
    assert first["train"]["ema"]["decay"] == 0.5 and second["train"]["ema"] == {"decay": 0.9998, "warmup": False}


def test_docstring_example_runs() -> None:
    import doctest

    from tract_hub.cli import recipe_flags

    result = doctest.testmod(recipe_flags, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_train_a_folder_from_flags_alone(
    image_folder_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [arg.replace("DATA", str(image_folder_root)) for arg in FLAGS]
    run = tmp_path / "run"
    assert main(["train", *flags, "--run-dir", str(run), "--device", "cpu", "--no-tensorboard"]) == 0
    assert f"{run}: 1 epoch, validation top1 " in capsys.readouterr().out
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert saved == _resolved(flags, capsys)
    # --resume with a longer run, by flag
    assert main(["train", str(run), "--resume", "--epochs", "2", "--device", "cpu", "--no-tensorboard"]) == 0
    assert f"{run}: 2 epochs, validation top1 " in capsys.readouterr().out

"""Recipes, overrides and run directories that would exhaust memory, recursion or time are refused at once.

Every YAML text goes through one reader (:func:`tract_hub.artifacts.reading.parse_yaml`: no aliases, bounded
depth) and every JSON text through :func:`tract_hub.artifacts.reading.parse_json` (bounded depth); what a recipe
can be checked for before training (its numbers, its target layer on the model built on the meta device) is
checked by ``--dry-run``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tract_hub.artifacts.run_dir import RunDirectory
from tract_hub.cli import main
from tract_hub.errors import DataError, HubError, InvalidArgumentError, RecipeError
from tract_hub.hub import parse_front_matter
from tract_hub.training.recipe import load_recipe, parse_override

DEMO = Path("recipes/demo_digits.yaml")


def _alias_bomb() -> str:
    """About 500 bytes that expand to 9**9 (387 million) strings: 9 levels of 9 aliases of the level below."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _run_cli(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(arguments)
    return status, capsys.readouterr().err


def test_alias_bomb_is_refused_in_well_under_a_second(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb())
    assert bomb.stat().st_size < 600
    start = time.perf_counter()
    status, err = _run_cli(["train", str(bomb), "--dry-run"], capsys)
    elapsed = time.perf_counter() - start
    assert status == 1 and f"{bomb}: YAML alias *a0 at line 2: aliases are not allowed" in err
    assert elapsed < 5  # measured: a few milliseconds; expanding the aliases took minutes and gigabytes


# (case, recipe text, the fragment of the refusal)
FILES = [
    ("100,000 nested lists", "[" * 100_000, "nested more than 64 levels deep at line 1"),
    ("100,000 nested mappings", "a: " + "{b: " * 100_000, "nested more than 64 levels deep"),
    ("merge of an alias", "base: &base {lr: 1}\noptimizer:\n  <<: *base\n", r"YAML alias \*base at line 3"),
    ("duplicate key", f"{DEMO.read_text()}\nlam: 0.2\n", "duplicate key 'lam'"),
    ("python object", "!!python/object/apply:os.system ['true']", "is not valid YAML"),
    ("two megabytes", "name: x\n" + "#" * (2 * 2**20), "more than the 1,048,576 bytes"),
]


@pytest.mark.parametrize(("case", "text", "fragment"), FILES, ids=[case[0] for case in FILES])
def test_hostile_recipe_files_are_refused(case: str, text: str, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=fragment):
        load_recipe(path)


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_recipe_that_is_not_a_regular_file_is_refused_at_once(special: str, tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    if special == "fifo":
        os.mkfifo(path)  # reading it would block forever
    else:
        os.symlink(special, path)
    with pytest.raises(RecipeError, match="not a regular file"):
        load_recipe(path)


# (case, override, the fragment of the refusal)
OVERRIDES = [
    ("epochs 1e22", "train.epochs=1e22", "train.epochs=1e+22 is too large to be an exact integer"),
    ("epochs beyond int64", f"train.epochs={10**22}", "does not fit a 64-bit integer"),
    ("a million epochs", "train.epochs=1000000", "more than 100,000 epochs"),
    ("seed beyond int64", f"train.seed={2**63}", "train.seed=9223372036854775808 does not fit a 64-bit integer"),
    ("alias in an override", "model.kwargs={a: &x [1], b: *x}", "YAML alias *x"),
    ("deep override", "model.kwargs=" + "[" * 1000, "nested more than 64 levels deep"),
    ("unknown target", "target=no_such_layer", "target='no_such_layer' does not fit timm:tract_resnet8_cifar"),
    ("target not a layer", "target=bn1", "layer 'bn1' is a torch.nn.modules.batchnorm.BatchNorm2d"),
]


@pytest.mark.parametrize(("case", "override", "fragment"), OVERRIDES, ids=[case[0] for case in OVERRIDES])
def test_dry_run_checks_what_can_be_checked(
    case: str, override: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _run_cli(["train", str(DEMO), "--set", override, "--dry-run"], capsys)
    assert status == 1 and fragment in err, err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback


def test_dry_run_accepts_a_target_of_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(DEMO), "--set", "target=[conv1]", "--set", "train.epochs=2.0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "- conv1" in out and "epochs: 2\n" in out


def test_overrides_are_read_by_the_bounded_reader() -> None:
    assert parse_override("optimizer.lr=1e-3") == ("optimizer.lr", 0.001)
    with pytest.raises(RecipeError, match="aliases are not allowed"):
        parse_override("a=[&x 1, *x]")


def test_run_directory_files_are_bounded(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    run.recipe_path.write_text(_alias_bomb())
    with pytest.raises(DataError, match="YAML alias"):
        run.read_recipe()
    run.summary_path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="nested more than 64 levels deep"):
        run.read_summary()
    run.metrics_path.write_text(json.dumps({"epoch": 1}) + "\n" + "[" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"metrics.jsonl:2 is nested more than 64 levels deep"):
        run.read_metrics()


def test_card_front_matter_is_read_by_the_bounded_reader() -> None:
    with pytest.raises(HubError, match="YAML alias"):
        parse_front_matter("---\n" + _alias_bomb() + "---\n# card\n")


def test_deeply_nested_metadata_is_refused_when_saving(tmp_path: Path) -> None:
    import tract_hub
    from tract_hub.models import create_model

    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(InvalidArgumentError, match="metadata is not JSON data"):
        tract_hub.save_pretrained(create_model("timm:test_resnet"), tmp_path / "c", metadata={"recipe": {"a": nested}})
    assert not (tmp_path / "c").exists()


def test_command_line_json_values_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _run_cli(["locate", "timm:test_resnet", "-k", "in_chans=" + "[" * 100_000], capsys)
    assert status == 1 and "nested more than 64 levels deep" in err

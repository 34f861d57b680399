"""tract-hub demo: both variants trained per seed, the table, the plot, the Hub checkpoint saved and reloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tract_hub.cli import main
from tract_hub.demo import format_demo_table, run_demo

from .training.builders import QUICK


@pytest.mark.slow  # two training runs, a save and a reload
def test_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")  # no progress bars
    result = run_demo(tmp_path / "out", epochs=2, seeds=1, device="cpu", overrides=QUICK)
    assert [p.name for p in result.run_dirs] == ["seed0-vanilla", "seed0-tract"]
    assert len(result.curves["vanilla"][0]) == len(result.curves["tract"][0]) == 2
    assert (
        "epoch          vanilla            TrAct   TrAct - vanilla" in result.table
        and "TrAct ahead at the final epoch for" in result.table
    )
    assert result.plot.stat().st_size > 1000
    assert result.checkpoint is not None and result.reload_max_abs_diff == 0.0
    config = json.loads((result.checkpoint / "config.json").read_text())
    assert config["architecture"] == "tract_resnet8_cifar" and config["tract_hub"]["lam"] == 0.1
    assert (result.checkpoint / "model.safetensors").is_file() and (result.checkpoint / "README.md").is_file()
    # running it again replaces the previous demo runs instead of refusing the existing run directories
    again = run_demo(tmp_path / "out", epochs=1, seeds=1, device="cpu", save=False, overrides=QUICK)
    assert len(again.curves["tract"][0]) == 1


def test_table_counts_the_seeds_tract_won() -> None:
    curves = {"vanilla": [[0.5, 0.8], [0.6, 0.9]], "tract": [[0.6, 0.85], [0.6, 0.88]]}
    table = format_demo_table(curves, [0, 1])
    assert "TrAct ahead at the final epoch for 1 of 2 seeds." in table
    assert "    2    85.00 ±  7.07    86.50 ±  2.12    +1.50" in table


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--epochs", "0"], "epochs=0 must be >= 1"), (["--threads", "-1"], "threads=-1 must be >= 1")],
)
def test_demo_cli_refuses_bad_arguments(arguments, message, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *arguments]) == 1
    assert message in capsys.readouterr().err


def test_docstring_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest
    import tempfile

    import tract_hub.demo

    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = doctest.testmod(tract_hub.demo, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

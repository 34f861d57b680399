"""The plots: accuracy in %, a log loss axis where the early loss dwarfs the rest, every seed in the demo legend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tract_hub.artifacts import curves
from tract_hub.artifacts.curves import Curve, plot_curves, plot_paired_curves, use_log_scale
from tract_hub.artifacts.task import CLASSIFICATION


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The axes each plot draws (captured before the file is written)."""
    axes: list[Any] = []
    original = curves._finish

    def keep(figure, drawn_axes, path):
        axes.extend(drawn_axes)
        return original(figure, drawn_axes, path)

    monkeypatch.setattr(curves, "_finish", keep)
    return axes


@pytest.mark.parametrize(
    ("losses", "log"),
    [([25.0, 1.2, 0.9, 0.8], True), ([2.3, 1.9, 1.5], False), ([2.0, 0.0, 0.1], False), ([5.0], False)],
)
def test_log_scale_only_when_the_losses_span_a_lot(losses: list[float], log: bool) -> None:
    assert use_log_scale(losses) is log


def test_run_curves_in_percent_with_a_log_loss_axis(tmp_path: Path, drawn: list[Any]) -> None:
    rows = [
        {"epoch": 1, "top1": 0.25, "ema_top1": 0.2, "train_loss": 40.0, "val_loss": 9.0},
        {"epoch": 2, "top1": 0.5, "ema_top1": 0.55, "train_loss": 1.0, "val_loss": 1.5},
    ]
    plot_curves([Curve("run", True, rows)], tmp_path / "c.png", CLASSIFICATION, title="t")
    metric, loss = drawn
    assert [list(line.get_ydata()) for line in metric.get_lines()] == [[25.0, 50.0], pytest.approx([20.0, 55.0])]
    assert [line.get_label() for line in metric.get_lines()] == ["run", "run EMA"]
    assert metric.get_ylabel() == "validation top-1 accuracy (%)"
    assert loss.get_yscale() == "log" and loss.get_ylabel() == "loss (log scale)"
    assert [line.get_label() for line in loss.get_lines()] == ["run training loss", "run validation loss"]


def test_demo_plot_names_every_seed(tmp_path: Path, drawn: list[Any]) -> None:
    paired = {"vanilla": [[0.5, 0.6], [0.4, 0.7]], "tract": [[0.6, 0.8], [0.5, 0.9]]}
    plot_paired_curves(paired, tmp_path / "demo.png", seeds=[3, 4])
    (axis,) = drawn
    assert axis.get_legend_handles_labels()[1] == [
        "vanilla, seed 3", "vanilla, seed 4", "vanilla, mean of 2 seeds",
        "TrAct, seed 3", "TrAct, seed 4", "TrAct, mean of 2 seeds",
    ]  # fmt: skip
    assert list(axis.get_lines()[2].get_ydata()) == pytest.approx([45.0, 65.0])  # vanilla mean, in %

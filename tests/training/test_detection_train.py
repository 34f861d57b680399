"""Faster R-CNN (VGG backbone) on a tiny VOC2007 tree: a training step, evaluation to mAP, TrAct on backbone.0."""

from __future__ import annotations

import json
from pathlib import Path

import tract_hub
from tract_hub.artifacts import ModelRecord
from tract_hub.training import train
from tract_hub.training.recipe import recipe_from_data
from tract_hub.training.validate import validate


def detection_recipe(root: Path, **train_options) -> object:
    return recipe_from_data(
        {
            "name": "voc_tiny",
            "lam": 0.1,
            "model": {
                "architecture": "torchvision:vgg11",
                "detector": "faster_rcnn",
                "detection": {"frozen_layers": 4, "min_size": 64, "max_size": 96, "roi_output_size": 2},
            },
            "data": {"dataset": "voc2007", "root": str(root), "augment": "finetune"},
            "optimizer": {"name": "sgd", "lr": 1e-3, "momentum": 0.9},
            "train": {"epochs": 1, "batch_size": 2, **train_options},
        }
    )


def test_faster_rcnn_trains_and_reports_map(voc_root: Path, tmp_path: Path) -> None:
    result = train(detection_recipe(voc_root), tmp_path / "run", device="cpu")
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert 0.0 <= row["map"] <= 1.0 and row["val_loss"] is None and row["train_loss"] > 0
    assert set(result.summary.final) == {"map", "train_loss"}
    assert result.summary.model == ModelRecord("torchvision:vgg11", {}, detector="faster_rcnn")
    assert result.summary.num_classes == 21 and result.summary.first_layers == ("backbone.0",)
    (layer,) = tract_hub.patched_layers(result.model)
    assert layer.name == "backbone.0" and layer.unfrozen  # frozen_layers=4 froze it; TrAct trains it
    assert not result.model.backbone[3].weight.requires_grad  # the rest of the frozen part stays frozen
    # tract-hub eval rebuilds the detector from the run directory and measures the same mAP
    again = validate(tmp_path / "run", checkpoint="last", device="cpu")
    assert again.metrics == {"val_loss": None, "map": row["map"]} and again.recorded == again.metrics

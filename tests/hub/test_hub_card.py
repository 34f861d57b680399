"""Model cards: front matter the Hub reads, the resolved recipe, results vanilla vs TrAct, curves, usage, citation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hub_helpers import write_run
from huggingface_hub import ModelCard

from tract_hub.errors import InvalidArgumentError
from tract_hub.hub import parse_front_matter, write_run_card

RECIPE = {"name": "cifar_finetune", "init": "hf-hub:org/base-model@v2", "epochs": 3, "optimizer": {"lr": 0.1}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "tract": write_run(root, "tract", lam=0.1, top1=(0.50, 0.725, 0.80), recipe=RECIPE),
        "vanilla": write_run(root, "vanilla", lam=None, top1=(0.40, 0.60, 0.70)),
        "other_data": write_run(root, "other", lam=None, dataset="cifar10"),
        "cifar_resnet": write_run(root, "cifar", lam=0.2, architecture="timm:tract_resnet8_cifar"),
        "torchvision": write_run(root, "tv", lam=0.1, architecture="torchvision:squeezenet1_1"),
        "stopped": write_run(
            root, "stopped", lam=0.1, recipe={"epochs": 10}, summary_changes={"complete": False, "diverged_at_epoch": 3}
        ),
    }


@pytest.fixture(scope="module")
def card(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("card") / "README.md"
    write_run_card(runs["tract"], path, baseline=runs["vanilla"], repo_id="org/tract-model")
    assert (path.parent / "training_curves.png").read_bytes().startswith(b"\x89PNG")
    return path.read_text()


def test_front_matter_has_the_hub_fields(card: str) -> None:
    front = parse_front_matter(card)
    assert front["library_name"] == "timm"
    assert front["license"] == "mit"
    assert {"tract", "image-classification"} <= set(front["tags"])
    assert front["datasets"] == ["digits"]
    assert front["base_model"] == "org/base-model"
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in metrics} == {"accuracy": 0.8, "top_5_accuracy": 1.0}


def test_huggingface_hub_parses_the_card_and_its_model_index(card: str) -> None:
    data = ModelCard(card).data
    assert data.library_name == "timm"
    assert data.base_model == "org/base-model"
    results = {(r.dataset_type, r.metric_type): r.metric_value for r in data.eval_results}
    assert results[("digits", "accuracy")] == 0.8


def test_recipe_is_shown_resolved(card: str) -> None:
    block = card.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == RECIPE


def test_results_compare_vanilla_and_tract(card: str) -> None:
    assert "| Metric | Vanilla | TrAct (λ = 0.1) | TrAct − vanilla |" in card
    assert "| Final top1 | 70.00% | 80.00% | +10.00 points |" in card  # in percent, as the command line shows
    assert "| top1 at the best epoch | 70.00% (epoch 3) | 80.00% (epoch 3) |  |" in card
    assert "| Final val_loss | 0.7333 | 0.7333 | +0 |" in card  # a loss as it is
    assert "reached the vanilla run's final top1 (70.00%, after 3 epochs) at epoch 2" in card
    assert "![Training curves](training_curves.png)" in card


def test_usage_and_citation(card: str) -> None:
    assert 'timm.create_model("hf-hub:org/tract-model", pretrained=True)' in card
    assert 'tract_hub.from_pretrained("hf-hub:org/tract-model", patched=True, lam=0.1' in card
    assert '"TrAct: Making First-layer Pre-Activations Trainable". NeurIPS 2024' in card
    assert "Petersen, Borgelt, Ermon" in card
    assert "arXiv:2410.23970" in card


# (run, expected text in the card, expected library_name: a library the Hub knows gives a usable snippet; none
# builds a torchvision builder, and without one the Hub would take config.json for transformers)
VARIANTS = [
    ("cifar_resnet", "plain timm cannot build\nthis checkpoint", "timm"),
    ("torchvision", 'torchvision.models.get_model("squeezenet1_1", **config["model_args"])', "tract-hub"),
]


@pytest.mark.parametrize(("run", "text", "library"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_usage_depends_on_the_architecture(run: str, text: str, library: str, runs: dict, tmp_path: Path) -> None:
    card = write_run_card(runs[run], tmp_path / "README.md").read_text()
    assert text in card
    assert parse_front_matter(card)["library_name"] == library
    assert "Replace `ORG/NAME` by the Hub repository" in card


def test_card_says_when_a_run_stopped_early(runs: dict, tmp_path: Path) -> None:
    card = write_run_card(runs["stopped"], tmp_path / "README.md").read_text()
    assert "the run stopped after 3 of the 10 planned epochs" in card
    assert "the run diverged at epoch 3" in card


# (case, run, baseline, message fragment)
BAD_BASELINES = [
    ("baseline is TrAct", "vanilla", "tract", "must be the vanilla run"),
    ("other data set", "tract", "other_data", "dataset"),
]


@pytest.mark.parametrize(("case", "run", "baseline", "fragment"), BAD_BASELINES, ids=[b[0] for b in BAD_BASELINES])
def test_meaningless_comparisons_are_refused(
    case: str, run: str, baseline: str, fragment: str, runs: dict, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        write_run_card(runs[run], tmp_path / "README.md", baseline=runs[baseline])


def test_pipeline_tag_and_data_set_ids_follow_the_task(runs: dict, tmp_path: Path) -> None:
    front = parse_front_matter(write_run_card(runs["other_data"], tmp_path / "a" / "README.md").read_text())
    assert front["pipeline_tag"] == "image-classification" and front["datasets"] == ["uoft-cs/cifar10"]
    assert front["model-index"][0]["results"][0]["dataset"] == {"name": "cifar10", "type": "uoft-cs/cifar10"}
    final = {"map": 0.6, "train_loss": 1.0}
    detector = write_run(
        tmp_path, "det", lam=0.1, dataset="voc2007", summary_changes={"final": final, "best": {"epoch": 3, **final}}
    )
    front = parse_front_matter(write_run_card(detector, tmp_path / "b" / "README.md").read_text())
    assert front["pipeline_tag"] == "object-detection" and front["datasets"] == ["HuggingFaceM4/pascal_voc"]
    assert "object-detection" in front["tags"] and "image-classification" not in front["tags"]
    result = front["model-index"][0]["results"][0]
    assert result["task"]["type"] == "object-detection"
    assert result["metrics"] == [{"type": "mean_average_precision", "name": "mAP", "value": 0.6}]

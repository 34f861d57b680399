"""The paper's CIFAR-100 suite (Table 1): each of its 36 architectures in the CIFAR form of the reference repository
(weiaicunzai/pytorch-cifar100), built from its recipe, located, patched and stepped; one epoch of the recipe for a
sample of families; the recipe's schedule against the reference code's."""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tract_hub
from tract_hub.models import CIFAR100_SUITE
from tract_hub.training import load_recipe, train
from tract_hub.training.modeling import build_model, install_tract
from tract_hub.training.optim import build_optimizers, lr_factor_function

from ..training.builders import write_tiny_cifar

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

#: Parameters at 100 classes of the reference repository's models (models/*.py): counted layer by layer from that
#: code's structure (convolution in/groups*out*kh*kw + bias, batch norm 2c, linear in*out+out) by
#: benchmarks/cifar_suite_params.py, which is independent of tract_hub's model files, and cross-checked with the
#: rounded figures of the reference README: within 1% except shufflenet 1.01M vs "1.0M", shufflenetv2 1.36M vs
#: "1.3M", googlenet 6.40M vs "6.2M", densenet161 26.68M vs "26M", densenet201 18.28M vs "18M" and seresnet152
#: 65.05M vs "66.2M" (coarse rounding, or figures measured on earlier versions of those files; the code is the
#: reference here). nasnet: the code registers 5,221,624 parameters, but every cell holds two adapters of the
#: previous cell's output and uses at most one; the 4,334,056 parameters it uses are the reference here (tract_hub
#: builds only the adapter a cell uses; see cifar_nasnet.py).
REFERENCE_PARAMS = {
    "mobilenet": 3_315_428,
    "mobilenetv2": 2_369_380,
    "squeezenet": 781_156,
    "shufflenet": 1_012_108,
    "shufflenetv2": 1_360_896,
    "vgg11_bn": 28_518_244,
    "vgg13_bn": 28_703_140,
    "vgg16_bn": 34_015_396,
    "vgg19_bn": 39_327_652,
    "densenet121": 7_048_548,
    "densenet161": 26_681_188,
    "densenet201": 18_277_220,
    "googlenet": 6_402_564,
    "inceptionv3": 22_318_148,
    "inceptionv4": 41_296_516,
    "inceptionresnetv2": 65_442_072,
    "xception": 21_013_988,
    "resnet18": 11_220_132,
    "resnet34": 21_328_292,
    "resnet50": 23_705_252,
    "resnet101": 42_697_380,
    "resnet152": 58_341_028,
    "resnext50": 14_788_772,
    "resnext101": 25_303_204,
    "resnext152": 33_343_652,
    "seresnet18": 11_314_012,
    "seresnet34": 21_498_000,
    "seresnet50": 26_262_804,
    "seresnet101": 47_527_764,
    "seresnet152": 65_045_780,
    "nasnet": 4_334_056,
    "wideresnet": 55_914_020,
    "stochasticdepth18": 11_224_932,
    "stochasticdepth34": 21_336_804,
    "stochasticdepth50": 23_705_316,
    "stochasticdepth101": 42_697_444,
}

#: Families trained for one epoch of their recipe: the paper's ResNet, and the ones whose training differs the most
#: (random depth in training, scaled branches in evaluation; a padded 1x1 stem; a channel-split block).
EPOCH_SAMPLE = ("resnet18", "stochasticdepth18", "mobilenetv2", "shufflenetv2")


def test_the_suite_is_the_papers_36_architectures_one_recipe_each() -> None:
    assert len(CIFAR100_SUITE) == 36 and set(CIFAR100_SUITE) == set(REFERENCE_PARAMS)
    files = {path.stem.removeprefix("cifar100_suite_") for path in RECIPES.glob("cifar100_suite_*.yaml")}
    assert files == set(CIFAR100_SUITE) | {"resnet18_133ep"}
    for name, architecture in CIFAR100_SUITE.items():
        assert load_recipe(RECIPES / f"cifar100_suite_{name}.yaml").model.architecture == f"timm:{architecture}"


@pytest.mark.slow  # the 36 models at full size (tests/models/test_cifar_families.py has small members)
@pytest.mark.parametrize("name", list(CIFAR100_SUITE))
def test_model_of_the_recipe_counts_locates_and_takes_one_tract_step(name: str) -> None:
    recipe = load_recipe(RECIPES / f"cifar100_suite_{name}.yaml")
    torch.manual_seed(0)
    model = build_model(recipe, num_classes=100).model
    assert model.num_classes == 100

    count = sum(p.numel() for p in model.parameters())
    assert abs(count - REFERENCE_PARAMS[name]) <= 0.02 * REFERENCE_PARAMS[name], count

    located = tract_hub.locate(model, verify=True)
    assert located.verified and located.names == [model.pretrained_cfg["first_conv"]], located.tried
    first = located[0].module
    assert isinstance(first, torch.nn.Conv2d) and first.in_channels == 3 and first.stride == (1, 1)

    assert install_tract(model, recipe, exact=False) == located.names and tract_hub.is_patched(model)
    (optimizer,) = build_optimizers(model, recipe.optimizer, located.names)
    before = first.weight.detach().clone()
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 100)
    F.cross_entropy(logits, torch.tensor([3, 97])).backward()
    # every parameter takes part (DistributedDataParallel refuses a model with parameters that get no gradient)
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    assert torch.isfinite(first.weight.grad).all() and first.weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(before, first.weight)


@pytest.mark.slow  # one epoch of training per sampled recipe
@pytest.mark.parametrize("name", EPOCH_SAMPLE)
def test_one_epoch_of_the_recipe_on_tiny_cifar100_files(name: str, tmp_path: Path) -> None:
    write_tiny_cifar(tmp_path / "data", "cifar100", train=8, test=4)
    overrides = [f"data.root={tmp_path / 'data'}", "train.epochs=1", "train.batch_size=4", "train.eval_batch_size=4"]
    recipe = load_recipe(RECIPES / f"cifar100_suite_{name}.yaml", overrides)
    result = train(recipe, tmp_path / "run", device="cpu")
    summary = result.summary
    assert summary.model.architecture == f"timm:{CIFAR100_SUITE[name]}" and summary.num_classes == 100
    assert list(summary.first_layers) == [result.model.pretrained_cfg["first_conv"]] and summary.lam == 0.1
    (row,) = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert row["epoch"] == 1 and torch.isfinite(torch.tensor([row["train_loss"], row["val_loss"]])).all()


def reference_lr_factor(epoch: int, batch: int, steps_per_epoch: int) -> float:
    """The reference train.py's learning rate / 0.1 in 1-based ``epoch`` at 0-based ``batch``: WarmUpLR over the
    first epoch (``(batch + 1) / steps``), then MultiStepLR(milestones=[60, 120, 160], gamma=0.2).step(epoch)."""
    if epoch == 1:
        return (batch + 1) / steps_per_epoch
    return 0.2 ** bisect.bisect_right([60, 120, 160], epoch)


def test_the_schedule_is_the_reference_codes_epoch_by_epoch() -> None:
    recipe = load_recipe(RECIPES / "cifar100_suite_vgg16_bn.yaml")
    steps = -(-50_000 // recipe.train.batch_size)  # the last partial batch is kept: 391 steps per epoch
    assert not recipe.train.drop_last and steps == 391
    factor = lr_factor_function(recipe.schedule, recipe.train.epochs * steps, steps)
    for epoch in range(1, recipe.train.epochs + 1):
        for batch in (0, 1, steps - 1):
            expected = reference_lr_factor(epoch, batch, steps)
            assert factor((epoch - 1) * steps + batch) == pytest.approx(expected), (epoch, batch)


def test_the_augmentation_is_the_reference_codes() -> None:
    from torchvision import transforms as T

    from tract_hub.training.data.transforms import build_image_transform

    recipe = load_recipe(RECIPES / "cifar100_suite_resnet18.yaml")
    steps = build_image_transform(
        recipe.data.augment, train=True, image_size=32, normalize="standard", mean=(0.5,) * 3, std=(0.25,) * 3
    ).transforms
    assert [type(step) for step in steps[:3]] == [T.RandomCrop, T.RandomHorizontalFlip, T.RandomRotation]
    assert steps[0].padding == 4 and list(steps[2].degrees) == [-15.0, 15.0]

"""The CIFAR families' timm interface (heads, pooling, channels, errors), the behaviours that differ from a plain
block (stochastic depth, Xception's rectified shortcut, NASNet's adapters), and a hub round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from torch import nn

import tract_hub
import tract_hub.models
from tract_hub.errors import InvalidArgumentError
from tract_hub.models import cifar_nasnet, cifar_stochastic_depth, cifar_vgg, cifar_xception

#: Small members of families whose heads differ (VGG's hidden layers, SqueezeNet's and MobileNetV2's classifiers
#: on pooled features, a ResNet subclass), kept narrow where the family allows it.
SMALL = {
    "tract_vgg11_bn_cifar": {"hidden": 32},
    "tract_squeezenet_cifar": {},
    "tract_mobilenetv2_cifar": {},
    "tract_stochasticdepth18_cifar": {"width": 8},
    "tract_wideresnet40_10_cifar": {"depth": 10, "widen_factor": 1},
}


@pytest.mark.parametrize("architecture", list(SMALL))
def test_timm_interface(architecture: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(architecture, in_chans=1, **SMALL[architecture]).eval()
    assert model.num_classes == 100 and model.pretrained_cfg["input_size"] == (3, 32, 32)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape[1] == model.num_features and features.ndim == 4
        pre_logits = model.forward_head(features, pre_logits=True)
        assert pre_logits.shape == (2, model.head_hidden_size)
        assert torch.equal(model.get_classifier()(pre_logits), model(x))
        model.reset_classifier(7)
        assert model(x).shape == (2, 7)
        model.reset_classifier(0, global_pool="")
        assert torch.equal(model(x), features)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: timm.create_model("tract_squeezenet_cifar", global_pool="max"), "global_pool='max'"),
        (lambda: cifar_vgg.CifarVGG(config="vgg17"), "config='vgg17'"),
        (lambda: timm.create_model("tract_squeezenet_cifar", global_pool=""), "num_classes=100"),
        (lambda: timm.create_model("tract_wideresnet40_10_cifar", depth=12), "depth=12"),
        (lambda: cifar_stochastic_depth.StochasticDepthBasicBlock(4, 4, survival=0.0), "survival=0.0"),
    ],
    ids=["pool", "vgg-config", "unpooled-with-classes", "wrn-depth", "survival"],
)
def test_invalid_arguments_are_refused_by_name(build, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        build()


def test_stochastic_depth_drops_whole_branches_in_training_and_scales_them_in_evaluation() -> None:
    torch.manual_seed(0)
    block = cifar_stochastic_depth.StochasticDepthBasicBlock(4, 4, survival=0.5)
    x = torch.randn(3, 4, 8, 8)
    branch = block.branch.eval()(x).detach()  # batch norm in eval mode: the branch is deterministic
    block.eval()
    assert torch.allclose(block(x), x + 0.5 * branch)
    block.train()
    block.branch.eval()
    outputs = [block(x).detach() for _ in range(40)]
    kept = [torch.allclose(out, x + branch) for out in outputs]
    dropped = [torch.equal(out, x) for out in outputs]
    assert all(k != d for k, d in zip(kept, dropped)) and 5 < sum(kept) < 35  # each pass all or nothing


def test_stochastic_depth_survival_falls_linearly_to_one_half() -> None:
    with torch.device("meta"):
        model = timm.create_model("tract_stochasticdepth18_cifar")
    survival = [block.survival for stage in model.layers for block in stage]
    assert survival == pytest.approx([1 - 0.5 * i / 7 for i in range(8)])


def test_xception_blocks_rectify_the_input_of_both_paths_where_the_reference_does() -> None:
    with torch.device("meta"):
        model = timm.create_model("tract_xception_cifar")
    assert [block.rectify_input for block in model.entry] == [False, True, True]
    assert all(block.rectify_input for block in model.middle) and not model.exit[0].rectify_input
    block = cifar_xception.XceptionBlock(nn.Conv2d(2, 2, 1), nn.Identity(), rectify_input=True)
    x = torch.randn(1, 2, 3, 3)
    assert torch.allclose(block(x), x.relu() + block.branch(x.relu()))


def test_nasnet_cells_build_only_the_adapter_they_use() -> None:
    with torch.device("meta"):
        model = timm.create_model("tract_nasnet_cifar")
    kinds = [type(cell.adapt_prev).__name__ for cell in model.cells]
    # stage 1: the stem's output twice (as wide as the cells' branches), then the 264-wide outputs of normal cells
    # (projected); after each reduction cell: a factorized reduction of the previous stage's output, then projections
    first, later = ["Identity", "Identity", "Sequential", "Sequential"], ["FactorizedReduce", *["Sequential"] * 3]
    reductions = ["Sequential"]
    assert kinds == [*first, *reductions, *later, *reductions, *later]
    reduce = cifar_nasnet.FactorizedReduce(1, 2).eval()  # batch norm with its initial statistics: x / sqrt(1 + eps)
    with torch.no_grad():
        for conv in (reduce.path1, reduce.path2):
            conv.weight.fill_(1.0), conv.bias.zero_()
        out = reduce(torch.arange(16.0).reshape(1, 1, 4, 4)) * (1 + reduce.bn.eps) ** 0.5
    # the even pixels, and the pixels shifted by one (the reference pads right/bottom and crops left/top)
    assert out[0, 0].flatten().tolist() == pytest.approx([0, 2, 8, 10])
    assert out[0, 1].flatten().tolist() == pytest.approx([5, 7, 13, 15])


@pytest.mark.parametrize("architecture", ["tract_squeezenet_cifar", "tract_shufflenetv2_cifar"])
def test_hub_round_trip(architecture: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = timm.create_model(architecture).eval()
    loaded = tract_hub.from_pretrained(tract_hub.save_pretrained(model, tmp_path / "ckpt")).eval()
    assert type(loaded) is type(model) and loaded.pretrained_cfg["first_conv"] == model.pretrained_cfg["first_conv"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_tract_architectures_are_exactly_what_the_families_register_with_timm() -> None:
    registered = tract_hub.models.tract_architectures()
    assert registered == set(timm.list_models("tract_*"))
    assert set(tract_hub.models.CIFAR100_SUITE.values()) | {"tract_resnet8_cifar"} == registered
    for name in registered:  # each builds the cfg it declares, with its first layer named
        assert timm.get_pretrained_cfg(name).first_conv

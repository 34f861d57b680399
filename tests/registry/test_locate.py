"""``locate``: the resolution order, verification, wrappers, leaving the model as it was, and the errors."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tract_hub
from tract_hub import FirstLayerNotFoundError, InvalidArgumentError
from tract_hub.registry import FirstLayer, locate


def small_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Dropout(0.5), nn.Conv2d(8, 8, 3))


def test_each_tier_answers_in_order(registered):
    model = small_cnn()
    assert [(layer.name, layer.rule) for layer in locate(model)] == [("0", "trace")]
    model.pretrained_cfg = {"first_conv": "0"}  # what timm models carry
    assert [(layer.name, layer.rule) for layer in locate(model)] == [("0", "timm.first_conv")]
    registered(name="t.tiers", match=nn.Sequential, layers="0")
    located = locate(model)
    assert [(layer.name, layer.rule) for layer in located] == [("0", "t.tiers")]
    assert isinstance(located[0], FirstLayer) and located[0].module is model[0]
    assert located[0].layer_type == "torch.nn.modules.conv.Conv2d"


def test_a_builtin_rule_comes_before_timm_first_conv():
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.resnet18()
    model.pretrained_cfg = {"first_conv": "layer1.0.conv1"}
    assert [(layer.name, layer.rule) for layer in locate(model)] == [("conv1", "torchvision.resnet")]


def test_verify_reports_a_config_that_disagrees_with_the_trace(caplog):
    model = small_cnn()
    model.pretrained_cfg = {"first_conv": "3"}  # wrong on purpose: layer 3 sees features
    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        located = locate(model, verify=True)
    assert located.names == ["3"] and located.traced == ["0"] and not located.verified
    assert "'timm.first_conv' says ['3'] but the trace found ['0']" in located.disagreement
    assert located.disagreement in caplog.text
    unverified = locate(model, verify=False)
    assert unverified.disagreement is None and unverified.traced is None and not unverified.verified
    model.pretrained_cfg = {"first_conv": "0"}
    assert locate(model, verify=True).verified


def test_a_first_conv_that_names_no_layer_falls_back_to_the_trace():
    model = small_cnn()
    model.pretrained_cfg = {"first_conv": "stem.conv"}
    located = locate(model)
    assert [(layer.name, layer.rule) for layer in located] == [("0", "trace")]
    assert any("stem.conv" in line for line in located.tried)


@pytest.mark.parametrize(
    ("wrap", "prefix"),
    [
        (nn.DataParallel, "module."),
        (torch.compile, "_orig_mod."),
    ],
    ids=["data-parallel", "torch-compile"],
)
def test_wrappers_are_seen_through_and_names_keep_their_prefix(wrap, prefix):
    wrapped = wrap(small_cnn())
    located = locate(wrapped, verify=True)
    assert located.names == [f"{prefix}0"] and located.disagreement is None
    assert wrapped.get_submodule(located.names[0]) is located[0].module


class Caching(nn.Module):
    """Stores things on itself during forward (like torchvision's anchor generator) and uses randomness."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)
        self.cache = [torch.zeros(1)]
        self.calls = 0

    def forward(self, x):
        self.cache = [c.to(x.device) for c in self.cache]
        self.last = x
        self.calls += 1
        return F.dropout(self.norm(self.conv(x)), 0.5, self.training) + torch.rand(1, device=x.device)


def _state(model: nn.Module) -> dict:
    return {
        "tensors": {k: (v.clone(), v.device, v.requires_grad) for k, v in model.state_dict(keep_vars=True).items()},
        "training": [m.training for m in model.modules()],
        "attributes": [sorted(vars(m)) for m in model.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
        "cache_device": model[0].cache[0].device,
        "calls": model[0].calls,
    }


@pytest.mark.parametrize("verify", [False, True])
def test_locate_leaves_the_model_and_the_random_state_as_they_were(verify):
    model = nn.Sequential(Caching(), nn.Conv2d(4, 4, 1))
    model[1].eval()  # mixed training flags must come back as they were
    model[1].register_forward_hook(lambda m, a, o: None)
    before = _state(model)
    rng = torch.get_rng_state()
    assert locate(model, verify=verify).names == ["0.conv"]
    after = _state(model)
    assert torch.equal(torch.get_rng_state(), rng)
    assert after["training"] == before["training"] == [True, True, True, True, False]
    assert after["attributes"] == before["attributes"] and after["hooks"] == before["hooks"]
    assert (after["cache_device"], after["calls"]) == (torch.device("cpu"), 0)
    for key, (value, device, grad) in before["tensors"].items():
        new_value, new_device, new_grad = after["tensors"][key]
        assert torch.equal(value, new_value) and (device, grad) == (new_device, new_grad), key


def test_locate_on_the_cpu_fallback_leaves_the_model_as_it_was():
    class ItemThenCache(Caching):
        def forward(self, x):
            if x.mean().item() > 10:  # not possible on meta
                x = x / 255
            return super().forward(x)

    model = nn.Sequential(ItemThenCache(), nn.Conv2d(4, 4, 1))
    before = _state(model)
    located = locate(model)
    assert located.names == ["0.conv"] and located.trace.device == "cpu"
    after = _state(model)
    assert after["attributes"] == before["attributes"] and after["calls"] == 0
    assert all(torch.equal(before["tensors"][k][0], after["tensors"][k][0]) for k in before["tensors"])


def test_example_inputs_are_used_for_models_whose_input_cannot_be_guessed():
    class Keyed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(6, 8)
            self.conv = nn.Conv1d(8, 8, 1)

        def forward(self, x):
            return self.conv(self.embed(x["points"]).transpose(1, 2))

    model = Keyed()
    with pytest.raises(FirstLayerNotFoundError):
        locate(model)
    located = locate(model, example_inputs=[{"points": torch.zeros(1, 5, 6)}])
    assert located.names == ["embed"]


def test_patch_uses_locate_and_records_the_rule():
    model = tract_hub.patch(small_cnn(), lam=0.1)
    assert [(layer.name, layer.found_by) for layer in tract_hub.patched_layers(model)] == [("0", "trace")]


class NoLearnedLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.ones(1, 3, 3, 3))
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return F.conv2d(x, self.kernel) * self.scale


class LearnedMatmul(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.color = nn.Parameter(torch.eye(3))
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv((x.movedim(1, -1) @ self.color).movedim(-1, 1))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        raise RuntimeError("this model cannot run")


class WeightOutsideItsModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return F.conv2d(x, self.stem.weight)


ERRORS = [
    ("no-learned-layer", NoLearnedLayer, ["no learned Linear/convolution consumed the input"]),
    ("unsupported-learned-op", LearnedMatmul, ["learned operations TrAct cannot act on", "color"]),
    ("forward-fails", Broken, ["RuntimeError: this model cannot run", "meta", "cpu"]),
    ("weight-outside-module", WeightOutsideItsModule, ["not inside 'stem'"]),
    ("lazy", lambda: nn.Sequential(nn.LazyConv2d(8, 3)), ["lazy modules 0 would be initialized", "forward first"]),
    ("nothing", lambda: nn.Sequential(nn.ReLU()), ["no Linear/convolution layer"]),
]


@pytest.mark.parametrize(("case", "factory", "messages"), ERRORS, ids=[e[0] for e in ERRORS])
def test_a_model_without_a_first_layer_raises_what_was_tried_and_how_to_name_it(case, factory, messages):
    model = factory()
    with pytest.raises(FirstLayerNotFoundError) as error:
        tract_hub.patch(model)
    text = str(error.value)
    assert type(model).__name__ in text
    assert "target=" in text or case == "weight-outside-module"
    for message in messages:
        assert message in text
    assert isinstance(error.value, LookupError) and not tract_hub.is_patched(model)


def test_a_lazy_head_does_not_stop_a_rule_but_is_never_initialized_by_a_trace():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(2))
    model.pretrained_cfg = {"first_conv": "0"}
    located = locate(model, verify=True)
    assert located.names == ["0"] and "lazy modules 2 would be initialized" in located.disagreement
    assert model[2].has_uninitialized_params()


def test_locate_refuses_what_is_not_a_module():
    with pytest.raises(InvalidArgumentError, match=r"torch\.nn\.Module"):
        locate("resnet18")

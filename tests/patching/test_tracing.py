"""Patched models under torch.fx, TorchScript and the meta device."""

from __future__ import annotations

import copy
import logging

import pytest
import timm
import torch
from torch import nn

import tract_hub
from tests.reference import relative_error
from tract_hub.engine import accumulation
from tract_hub.engine.solve import solve_with_factor
from tract_hub.patching import gradient


def std_conv_net(kind: str) -> nn.Module:
    import timm.layers

    torch.manual_seed(0)
    first = getattr(timm.layers, kind)(3, 8, 3, stride=2, padding=1)
    return nn.Sequential(first, nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4)).double()


@pytest.mark.parametrize("kind", ["StdConv2d", "ScaledStdConv2d"])
def test_fx_symbolic_trace_keeps_tract(kind: str) -> None:
    """torch.fx traces through these layers' forward (they are not torch.nn leaf modules): the graph calls
    TrAct's operator, so the traced module trains exactly like the patched one."""
    patched = tract_hub.patch(std_conv_net(kind), target="0")
    graph = torch.fx.symbolic_trace(copy.deepcopy(patched))
    assert "tract_hub.route_weight" in graph.code
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for module in (patched, graph):
        module(x).square().sum().backward()
    traced = dict(graph.named_parameters())
    for name, param in patched.named_parameters():
        assert relative_error(traced[name].grad, param.grad) < 1e-12, name


def test_timm_fx_feature_extraction_backward() -> None:
    """What timm's test_model_backward_fx does, on a patched NF-ResNet (ScaledStdConv2d stem)."""
    import timm
    from timm.layers import get_notrace_functions, get_notrace_modules
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = tract_hub.patch(timm.create_model("nf_resnet26", num_classes=4)).train()
    kwargs = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions())
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=kwargs)
    graph = create_feature_extractor(
        model, train_return_nodes=train_nodes[-1:], eval_return_nodes=eval_nodes[-1:], tracer_kwargs=kwargs
    )
    (out,) = graph(torch.randn(2, 3, 32, 32)).values()
    out.mean().backward()
    assert "tract_hub.route_weight" in graph.code
    assert all(p.grad is not None for p in graph.parameters() if p.requires_grad)


@pytest.mark.parametrize("target", ["0", ""], ids=["model", "bare-layer"])
def test_torchscript_compiles_the_plain_model_and_says_so(target: str, caplog: pytest.LogCaptureFixture) -> None:
    layer = nn.Conv2d(3, 4, 3)
    model = tract_hub.patch(nn.Sequential(layer, nn.ReLU()) if target else layer, target=target).eval()
    with caplog.at_level(logging.WARNING):
        scripted = torch.jit.script(model)
    assert "TrAct is not part of the scripted" in caplog.text
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(scripted(x), model(x))
    assert tract_hub.is_patched(model) and layer.__dict__["forward"].module is layer  # the model keeps TrAct
    assert scripted.state_dict().keys() == model.state_dict().keys()


def test_a_module_around_the_patched_model_scripts_and_keeps_it() -> None:
    """TorchScript puts a prepared copy of each child in its place inside the module it scripts; the plain copy of
    the patched model is swapped back before the next forward, so the eager wrapper still trains with TrAct."""
    layer = nn.Conv2d(3, 4, 3)
    backbone = tract_hub.patch(nn.Sequential(layer, nn.ReLU()), lam=0.02, target="0")
    wrapper = nn.Sequential(backbone, nn.Flatten())
    scripted = torch.jit.script(wrapper)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(scripted(x), wrapper(x))  # a forward of any module puts the patched model back
    assert wrapper[0] is backbone and backbone[0] is layer and layer.__dict__["forward"].lam == 0.02
    assert [p.name for p in tract_hub.patched_layers(wrapper)] == ["0.0"]
    wrapper(x).sum().backward()
    assert layer.__dict__["forward"].state.accumulation is not None  # TrAct's backward ran


def test_timm_wrappers_and_fx_feature_extractors_script() -> None:
    """timm's test_feature_getter_stage_ends_torchscript and test_model_forward_fx_torchscript on a patched model."""
    from timm.models._features import FeatureGetterNet
    from torchvision.models.feature_extraction import create_feature_extractor

    model = tract_hub.patch(timm.create_model("ghostnet_050"), lam=0.02).eval()  # one of that test's models
    stem = model.conv_stem
    getter = FeatureGetterNet(model, out_indices=(0, 1, 2)).eval()
    x = torch.randn(1, 3, 64, 64)
    scripted = torch.jit.script(getter)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(scripted(x), getter(x), strict=True))
    assert getter.model is model and model.conv_stem is stem and tract_hub.is_patched(model)
    extractor = create_feature_extractor(model, return_nodes=["conv_stem"])
    with torch.no_grad():
        assert torch.equal(torch.jit.script(extractor)(x)["conv_stem"], extractor(x)["conv_stem"])
    assert extractor.conv_stem is stem and stem.__dict__["forward"].lam == 0.02


def test_an_fx_graph_that_calls_the_operator_scripts() -> None:
    """timm's test_model_forward_fx_torchscript on test_nfnet: FX traces through its ScaledStdConv2d stem, so the
    graph calls tract_hub::route_weight by name, which TorchScript compiles (an attribute lookup of its overload
    would not)."""
    from timm.models import get_notrace_functions, get_notrace_modules
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = tract_hub.patch(timm.create_model("test_nfnet")).eval()
    tracer = {"leaf_modules": get_notrace_modules(), "autowrap_functions": get_notrace_functions()}
    _, nodes = get_graph_node_names(model, tracer_kwargs=tracer)
    graph = create_feature_extractor(model, return_nodes=[nodes[-1]], tracer_kwargs=tracer)
    assert "torch.ops.tract_hub.route_weight(" in graph.code
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(torch.jit.script(graph)(x)[nodes[-1]], model(x))


def test_a_scripting_that_fails_leaves_the_patched_model_in_place() -> None:
    class Unscriptable(nn.Module):
        def __init__(self, body: nn.Module) -> None:
            super().__init__()
            self.body = body

        def forward(self, x):  # no annotations: **kwargs cannot be scripted
            return self.body(x, **{})

    backbone = tract_hub.patch(nn.Sequential(nn.Conv2d(3, 4, 3)), target="0")
    wrapper = Unscriptable(backbone)
    with pytest.raises(Exception):  # noqa: B017 (TorchScript's own error, whatever its type)
        torch.jit.script(wrapper)
    assert tract_hub.is_patched(wrapper) and wrapper.body is backbone


def small_net(device: str) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4)).to(device)


def accumulate_and_clear(model: nn.Module, device: str) -> None:
    """Two steps of two micro-batches each, cleared in place between them: every path of the exact backward
    (a new accumulation, a continued one, a cleared-in-place one decided on the device)."""
    for _ in range(2):
        for _ in range(2):
            model(torch.randn(4, 3, 8, 8, device=device)).sum().backward()
        model.zero_grad(set_to_none=False)


@pytest.mark.parametrize("exact", [True, False])
def test_meta_device_backward_makes_no_host_sync(exact: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the meta device TrAct's real backward runs (its operators have meta kernels), and any .item(), bool()
    or .tolist() of a tensor raises there: the backward takes every data-dependent decision on the device."""
    solved_on: list[str] = []

    def recorded(grad: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        solved_on.append(factor.device.type)
        return solve_with_factor(grad, factor)

    monkeypatch.setattr(gradient, "solve_with_factor", recorded)
    monkeypatch.setattr(accumulation, "solve_with_factor", recorded)
    model = tract_hub.patch(small_net("meta"), target="0", exact=exact)
    accumulate_and_clear(model, "meta")
    assert model[0].weight.grad.shape == model[0].weight.shape
    state = model[0].forward.state
    assert (state.accumulation is not None) is exact  # the real backward ran, not a stand-in
    assert solved_on and set(solved_on) == {"meta"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_backward_makes_no_host_sync() -> None:
    model = tract_hub.patch(small_net("cuda"), target="0")
    accumulate_and_clear(model, "cuda")  # warm-up: lazy initializations may sync once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        accumulate_and_clear(model, "cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")

"""TrAct's weight gradient against a float64 reference written from the formula, over every layer option."""

from __future__ import annotations

import copy

import pytest
import torch

import tract_hub
from tests.layer_cases import LAYER_CASES, LayerCase
from tests.op_recorder import OpRecorder, explicit_conv_args
from tests.reference import conv_rows, linear_rows, relative_error, tract_reference

LAM = 0.1


def output_weights(shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """Fixed random weights for the loss sum(out * R), so every run sees the same incoming gradient."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)


def reference_gradients(module: torch.nn.Module, x: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
    """Every parameter's gradient with TrAct applied by the formula, computed in float64 from scratch."""
    module = copy.deepcopy(module).double()
    x = x.double()
    with OpRecorder() as recorder:
        out = module(x)
    (call,) = recorder.calls
    loss = (out * output_weights(out.shape, torch.float64)).sum()
    used = call["weight"]
    params = dict(module.named_parameters())
    others = [p for name, p in params.items() if name != "weight"]
    grad_used, *other_grads = torch.autograd.grad(loss, [used, *others], retain_graph=True, allow_unused=True)
    rows = conv_rows(call["input"], **explicit_conv_args(call)) if call["dims"] else linear_rows(call["input"])
    transformed = tract_reference(grad_used, rows, lam)
    grads = dict(zip([n for n in params if n != "weight"], other_grads))
    if used is params["weight"]:
        grads["weight"] = transformed
        return grads
    # A weight computed on the fly (weight standardization, gains): TrAct acts on the weight the convolution
    # used; the transform's parameters receive the transformed gradient through it.
    feeding = [name for name in params if name != "bias"]
    upstream = torch.autograd.grad(used, [params[n] for n in feeding], transformed, allow_unused=True)
    grads.update({name: grad for name, grad in zip(feeding, upstream) if grad is not None})
    return grads


def run_patched(module: torch.nn.Module, x: torch.Tensor, lam: float = LAM) -> dict[str, torch.Tensor]:
    patched = tract_hub.patch(copy.deepcopy(module), lam, target="")
    out = patched(x)
    (out * output_weights(out.shape, out.dtype)).sum().backward()
    return {name: p.grad for name, p in patched.named_parameters()}


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["f64", "f32"])
@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda case: case.id)
def test_gradients_match_float64_formula(case: LayerCase, dtype: torch.dtype, tolerance: float) -> None:
    torch.manual_seed(0)
    module = case.build().to(dtype)
    x = case.make_input(torch.Generator().manual_seed(0), dtype)
    expected = reference_gradients(module, x, LAM)
    actual = run_patched(module, x)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert relative_error(actual[name], expected[name]) < tolerance, name


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda case: case.id)
def test_forward_input_and_bias_gradients_are_bit_identical(case: LayerCase) -> None:
    torch.manual_seed(0)
    vanilla = case.build()
    patched = tract_hub.patch(copy.deepcopy(vanilla), LAM, target="")
    results = []
    for module in (vanilla, patched):
        x = case.make_input(torch.Generator().manual_seed(0)).requires_grad_(True)
        out = module(x)
        (out * output_weights(out.shape, out.dtype)).sum().backward()
        results.append((out.detach(), x.grad, getattr(module, "bias", None)))
    (out_v, x_grad_v, bias_v), (out_p, x_grad_p, bias_p) = results
    assert torch.equal(out_v, out_p)
    assert torch.equal(x_grad_v, x_grad_p)
    if bias_v is not None:
        assert torch.equal(bias_v.grad, bias_p.grad)


def test_tract_changes_the_weight_gradient() -> None:
    """Guard against a vacuous pass: the TrAct gradient differs from the ordinary one."""
    torch.manual_seed(0)
    vanilla = torch.nn.Conv2d(3, 8, 3)
    patched = tract_hub.patch(copy.deepcopy(vanilla), LAM, target="")
    x = torch.randn(4, 3, 8, 8) * 3
    for module in (vanilla, patched):
        module(x).square().sum().backward()
    assert relative_error(patched.weight.grad, vanilla.weight.grad) > 0.1


def test_covariance_is_chunked_exactly() -> None:
    """Slices of a few rows (batch chunks and bands of output rows) sum to the one-shot covariance."""
    from tract_hub.engine import LayerGeometry, input_covariance

    x = torch.randn(3, 3, 20, 20, dtype=torch.float64)
    geometry = LayerGeometry.for_conv(torch.empty(8, 3, 5, 5), stride=2, padding=2)
    full, rows = input_covariance(x, geometry)
    for chunk_bytes in (8 * 75 * 3, 8 * 75 * 10 * 5, 8 * 75 * 100 * 2):
        chunked, chunked_rows = input_covariance(x, geometry, max_chunk_bytes=chunk_bytes)
        assert chunked_rows == rows == 300
        assert torch.allclose(chunked, full, rtol=1e-12, atol=1e-10)

"""Low-precision modules and autocast: TrAct on the gradient the layer really produced, solved in float32+."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

import tract_hub
from tests.layer_cases import LAYER_CASES
from tests.op_recorder import OpRecorder, explicit_conv_args
from tests.reference import conv_rows, linear_rows, relative_error, tract_reference

CASES = {case.id: case for case in LAYER_CASES}
SAMPLE = ["linear-3d-tokens", "conv2d-imagenet-stem", "conv2d-groups", "conv2d-patch-embed", "timm-StdConv2d"]


def same_gradient_reference(module, x, context) -> torch.Tensor:
    """TrAct by the formula (float64) applied to the gradient the unpatched layer produced in this precision."""
    module = copy.deepcopy(module)
    with context(), OpRecorder() as recorder:
        out = module(x)
    (call,) = recorder.calls
    used = call["weight"]
    (grad_used,) = torch.autograd.grad(out.float().sum(), used, retain_graph=True)
    rows = conv_rows(call["input"], **explicit_conv_args(call)) if call["dims"] else linear_rows(call["input"])
    transformed = tract_reference(grad_used, rows, 0.1)
    if used is module.weight:
        return transformed
    return torch.autograd.grad(used, module.weight, transformed.to(used.dtype))[0]


def patched_gradient(module, x, context) -> torch.Tensor:
    patched = tract_hub.patch(copy.deepcopy(module), 0.1, target="")
    with context():
        out = patched(x)
    out.float().sum().backward()
    return patched.weight.grad


SETTINGS = {
    # name: (module dtype, input dtype, context, tolerance on the relative error)
    "bfloat16-module": (torch.bfloat16, torch.bfloat16, contextlib.nullcontext, 2e-2),
    "float16-module": (torch.float16, torch.float16, contextlib.nullcontext, 5e-3),
    "autocast-cpu-bf16": (torch.float32, torch.float32, lambda: torch.autocast("cpu", dtype=torch.bfloat16), 1e-4),
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("case_id", SAMPLE)
def test_low_precision_matches_formula_on_the_same_gradient(case_id: str, setting: str) -> None:
    module_dtype, input_dtype, context, tolerance = SETTINGS[setting]
    case = CASES[case_id]
    torch.manual_seed(0)
    module = case.build().to(module_dtype)
    x = case.make_input(torch.Generator().manual_seed(0)).to(input_dtype)
    expected = same_gradient_reference(module, x, context)
    actual = patched_gradient(module, x, context)
    assert actual.dtype == module.weight.dtype
    assert torch.isfinite(actual).all()
    assert relative_error(actual, expected) < tolerance


def test_unnormalized_pixels_are_solved_in_float64() -> None:
    """Pixels in [0, 255] make x^T x/N + lam*I badly conditioned for float32; the policy solves in float64.

    Measured on this case: all in float32 the result is off by about 9e-5 (float32 solve: 9e-5; float64 solve of a
    float32 covariance: 1.2e-5); with the covariance summed again in float64 and solved in float64: 2.5e-8.
    """
    from tract_hub.engine import LayerGeometry, tract_gradient

    torch.manual_seed(0)
    module = torch.nn.Conv2d(3, 8, 7)
    x = torch.rand(8, 3, 16, 16) * 255
    (grad,) = torch.autograd.grad(module(x).sum(), module.weight)
    actual = tract_gradient(grad, x, LayerGeometry.for_conv(module.weight), 0.1)
    rows = conv_rows(x, (7, 7), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert relative_error(actual, tract_reference(grad, rows, 0.1)) < 1e-6


def test_ill_conditioned_layer_adds_no_error_beyond_pytorchs_own_gradient() -> None:
    """Smooth images in [0, 255] (torchvision's SSD-VGG16 feeds its first conv such inputs) make
    x^T x/N + lam*I so ill-conditioned (cond ~1e5) that PyTorch's own float32 weight gradient G, solved exactly,
    is already off by ~1e-3: the floor of using the fused G (DESIGN.md decision 2). TrAct must add nothing to it.
    """
    from tract_hub.engine import LayerGeometry, tract_gradient

    torch.manual_seed(0)
    module = torch.nn.Conv2d(3, 16, 3, padding=1)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 24, 24), size=(120, 120), mode="bilinear")
    x = (x - 0.45) * 255
    out = module(x)
    grad_out = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, module.weight, grad_out)
    rows = conv_rows(x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    cov = rows[0].T @ rows[0] / rows.shape[1] + 0.1 * torch.eye(27, dtype=torch.float64)
    assert torch.linalg.cond(cov) > 1e4  # the regime this test is about

    actual = tract_gradient(grad, x, LayerGeometry.for_conv(module.weight, padding=1), 0.1)
    exact_solve_of_float32_grad = tract_reference(grad, rows, 0.1)
    module64 = copy.deepcopy(module).double()
    (grad64,) = torch.autograd.grad(module64(x.double()), module64.weight, grad_out.double())
    reference = tract_reference(grad64, rows, 0.1)
    assert relative_error(actual, exact_solve_of_float32_grad) < 1e-6
    floor = relative_error(exact_solve_of_float32_grad, reference)
    assert floor > 1e-5  # the float32 G alone is this far from the float64 formula
    assert relative_error(actual, reference) < 1.5 * floor

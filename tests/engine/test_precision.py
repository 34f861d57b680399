"""The covariance dtype policy (by device, never by data) and the accuracy of each path."""

from __future__ import annotations

import pytest
import torch

from tests.reference import conv_rows, relative_error, tract_reference
from tract_hub.engine import LayerGeometry, covariance_dtype, input_covariance, precision, solve_with_covariance


def test_the_policy_depends_on_the_device_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert covariance_dtype(torch.zeros(2, dtype=torch.float32)) == torch.float64  # CPU: float64 is fast
    assert covariance_dtype(torch.zeros(2, dtype=torch.bfloat16)) == torch.float64
    monkeypatch.setattr(precision, "_fast_float64", lambda device_type, index: False)  # a consumer GPU
    assert covariance_dtype(torch.zeros(2, dtype=torch.float32)) == torch.float32
    assert covariance_dtype(torch.zeros(2, dtype=torch.float64)) == torch.float64


def smooth_images(batch: int, size: int, scale: float, shift: float) -> torch.Tensor:
    small = torch.rand(batch, 3, size // 5, size // 5, generator=torch.Generator().manual_seed(0))
    return (torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear") - shift) * scale


CASES = {
    # name: (input, weight shape, conv arguments, bound on the float32 path's relative error (measured))
    "normalized-3x3": (lambda: torch.randn(8, 3, 32, 32), (16, 3, 3, 3), {"padding": 1}, 1e-6),  # 6e-8
    "normalized-patch16": (lambda: torch.randn(8, 3, 64, 64), (32, 3, 16, 16), {"stride": 16}, 2e-5),  # 5e-6
    "ssd-like-255": (lambda: smooth_images(2, 120, 255.0, 0.45), (16, 3, 3, 3), {"padding": 1}, 1e-3),  # 2.6e-4
}


@pytest.mark.parametrize("name", CASES)
def test_each_accumulation_dtype_against_the_formula(name: str) -> None:
    """float64 (CPUs, data-center GPUs): at float64's level whatever the inputs. float32 (other GPUs): within
    the measured bound, which grows with the input's distance from unit scale (documented in engine/precision.py)."""
    make_input, weight_shape, kwargs, float32_bound = CASES[name]
    x = make_input()
    geometry = LayerGeometry.for_conv(torch.empty(weight_shape), **kwargs)
    grad = torch.randn(weight_shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rows = conv_rows(x, geometry.kernel, geometry.stride, geometry.padding, geometry.dilation, geometry.groups)
    expected = tract_reference(grad, rows, 0.1)
    for dtype, bound in ((torch.float64, 1e-9), (torch.float32, float32_bound)):
        cov, count = input_covariance(x, geometry, dtype=dtype)
        assert relative_error(solve_with_covariance(grad, cov, count, 0.1), expected) < bound, dtype


def test_a_float32_covariance_made_indefinite_by_rounding_is_still_solved() -> None:
    """Rows with a huge common offset: the float32 sum of x^T x misses positive definiteness by its rounding
    error, far above lam. The factorization is redone with a shift of that size (on the device) instead of
    returning NaN for finite inputs."""
    generator = torch.Generator().manual_seed(0)
    offsets = 1e4 * (1 + torch.rand(6, generator=generator, dtype=torch.float64))
    rows = torch.randn(64, 6, generator=generator, dtype=torch.float64) * 1e-2 + offsets
    cov = (rows.T @ rows).float()[None]
    matrix = cov.double() / 64 + 1e-6 * torch.eye(6, dtype=torch.float64)
    assert torch.linalg.cholesky_ex(matrix)[1].item() != 0  # the case this test is about
    grad = torch.randn(3, 6, generator=generator, dtype=torch.float64)
    out = solve_with_covariance(grad, cov, 64, 1e-6)
    assert torch.isfinite(out).all()


def test_autocast_and_tf32_do_not_lower_the_covariance() -> None:
    x = torch.randn(4, 3, 16, 16)
    geometry = LayerGeometry.for_conv(torch.empty(8, 3, 3, 3), padding=1)
    expected, _ = input_covariance(x, geometry, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16), precision.full_precision(x.device):
        actual, _ = input_covariance(x, geometry, dtype=torch.float32)
    assert torch.equal(actual, expected)

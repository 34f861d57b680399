"""How the covariance is summed: by device where the device decides, by the input's predicted error on a CPU, each
path tested on a CPU by forcing it, and each path's accuracy against the float64 formula."""

from __future__ import annotations

import pytest
import torch

from tests.reference import conv_rows, relative_error, tract_reference
from tract_hub.engine import (
    LayerGeometry,
    Summation,
    forced_summation,
    input_covariance,
    input_covariance_with_summation,
    precision,
    solve_with_covariance,
    summation_for,
)

CIFAR_STEM = ((128, 3, 32, 32), (64, 3, 3, 3), {"padding": 1})
VIT_PATCH = ((8, 3, 224, 224), (384, 3, 16, 16), {"stride": 16})


def smooth_images(batch: int, size: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """Images with the pixel correlations of photographs (bilinear upsampling of noise)."""
    small = torch.rand(batch, 3, max(2, size // 5), max(2, size // 5), generator=torch.Generator().manual_seed(0))
    return (torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear") - shift) * scale


def test_the_device_decides_where_it_can(monkeypatch: pytest.MonkeyPatch) -> None:
    assert precision.device_summation(torch.zeros(2, dtype=torch.float64)) == torch.float64
    assert precision.device_summation(torch.zeros(2)) is None  # CPU: the input decides
    assert precision.device_summation(torch.zeros(2, device="meta")) == torch.float32  # an accelerator
    monkeypatch.setattr(precision, "_fast_float64", lambda device_type, index: True)  # a data-center GPU
    assert precision.device_summation(torch.zeros(2, device="meta")) == torch.float64
    assert precision.covariance_dtype(torch.zeros(2)) == torch.float64  # CPU before the input is read


@pytest.mark.parametrize(
    "case, scale, shift, expected",
    [
        (CIFAR_STEM, 1 / 0.25, 0.5, torch.float32),  # normalized
        (CIFAR_STEM, 1.0, 0.0, torch.float32),  # [0, 1]
        (CIFAR_STEM, 255.0, 0.0, torch.float64),  # raw [0, 255]
        (VIT_PATCH, 1 / 0.25, 0.5, torch.float64),  # few rows per feature: G is accurate, float32 is not enough
    ],
    ids=["stem-normalized", "stem-unit", "stem-255", "vit-patch16-normalized"],
)
def test_the_cpu_rule_sends_what_needs_it_to_float64(case, scale: float, shift: float, expected) -> None:
    shape, weight_shape, kwargs = case
    x = smooth_images(shape[0], shape[2], scale, shift)
    summation = summation_for(x, LayerGeometry.for_conv(torch.empty(weight_shape), **kwargs), lam=1e-3)
    assert summation.dtype == expected
    if expected == torch.float32:
        assert summation.partial_rows >= precision.MIN_PARTIAL_ROWS


def test_the_rule_predicts_longer_partial_sums_for_larger_lam_and_more_rows() -> None:
    kwargs = {"mean_square": 1.0, "variance": 1.0, "features": 27}
    small = precision.float32_partial_rows(rows=131072, lam=1e-3, **kwargs)
    assert precision.float32_partial_rows(rows=131072, lam=0.1, **kwargs) == pytest.approx(10 * small, rel=1e-3)
    assert precision.float32_partial_rows(rows=2 * 131072, lam=1e-3, **kwargs) == pytest.approx(2 * small, rel=1e-3)
    assert precision.float32_partial_rows(rows=100, lam=0.1, **kwargs) == 0  # too few rows per partial sum
    assert precision.float32_partial_rows(rows=10**6, lam=0.1, mean_square=float("nan"), variance=1.0, features=3) == 0


def test_forced_summation_applies_inside_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    x = smooth_images(4, 16)
    geometry = LayerGeometry.for_conv(torch.empty(8, 3, 3, 3), padding=1)
    with forced_summation(torch.float64):
        assert summation_for(x, geometry) == Summation(torch.float64)
        with forced_summation(torch.float32):
            assert summation_for(x, geometry).dtype == torch.float32
        assert summation_for(x, geometry) == Summation(torch.float64)
    assert precision.device_summation(x) is None
    with pytest.raises(ValueError, match="float32"), forced_summation(torch.bfloat16):
        pass


CASES = {
    # name: (input, weight shape, conv arguments, bound on the float32 path's relative error (measured))
    "normalized-3x3": (lambda: torch.randn(8, 3, 32, 32), (16, 3, 3, 3), {"padding": 1}, 1e-6),  # 2e-8
    "normalized-patch16": (lambda: torch.randn(8, 3, 64, 64), (32, 3, 16, 16), {"stride": 16}, 2e-5),  # 5e-6
    "ssd-like-255": (lambda: smooth_images(2, 120, 255.0, 0.45), (16, 3, 3, 3), {"padding": 1}, 1e-4),  # 2e-5
    "offset-255-7x7": (lambda: smooth_images(4, 40, 255.0), (16, 3, 7, 7), {"stride": 2, "padding": 3}, 1e-3),  # 4e-4
}


@pytest.mark.parametrize("name", CASES)
def test_each_summation_against_the_formula(name: str) -> None:
    """float64 (data-center GPUs): at float64's level whatever the inputs. float32, shifted (consumer GPUs, and
    CPUs where the rule allows): within the measured bound, whatever the inputs' offset."""
    make_input, weight_shape, kwargs, float32_bound = CASES[name]
    x = make_input()
    geometry = LayerGeometry.for_conv(torch.empty(weight_shape), **kwargs)
    grad = torch.randn(weight_shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rows = conv_rows(x, geometry.kernel, geometry.stride, geometry.padding, geometry.dilation, geometry.groups)
    expected = tract_reference(grad, rows, 0.1)
    for dtype, bound in ((torch.float64, 1e-9), (torch.float32, float32_bound)):
        cov, count = input_covariance(x, geometry, dtype=dtype)
        assert cov.dtype == torch.float64
        error = relative_error(solve_with_covariance(grad, cov, count, 0.1), expected)
        assert error < bound, (dtype, error)


def test_the_shift_makes_float32_blind_to_the_offset() -> None:
    """Rows with a large common offset: a plain float32 sum of x^T x keeps little below its rounding (~1e-7 of
    1e6 x N), which the solve amplifies; the shifted sum keeps the rows' spread to float32 precision."""
    generator = torch.Generator().manual_seed(0)
    offsets = 1e3 * (1 + torch.rand(6, generator=generator))
    rows = torch.randn(4096, 6, generator=generator) + offsets
    grad = torch.randn(3, 6, generator=generator, dtype=torch.float64)
    expected = tract_reference(grad, rows.double(), 1e-3)
    cov, count = input_covariance(rows, LayerGeometry.for_linear(torch.empty(3, 6)), dtype=torch.float32)
    shifted = relative_error(solve_with_covariance(grad, cov, count, 1e-3), expected)
    plain = relative_error(solve_with_covariance(grad, (rows.T @ rows)[None], count, 1e-3), expected)
    assert shifted < 1e-4
    assert not plain <= 100 * shifted  # far off, or NaN: the plain float32 sum is not even positive definite


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_input_covariance_says_how_it_summed(dtype: torch.dtype) -> None:
    x = smooth_images(4, 16)
    geometry = LayerGeometry.for_conv(torch.empty(8, 3, 3, 3), padding=1)
    cov, rows, summation = input_covariance_with_summation(x, geometry, dtype=dtype)
    assert summation.dtype == dtype and cov.dtype == torch.float64 and rows == 4 * 16 * 16


def test_autocast_and_tf32_do_not_lower_the_covariance() -> None:
    x = torch.randn(4, 3, 16, 16)
    geometry = LayerGeometry.for_conv(torch.empty(8, 3, 3, 3), padding=1)
    expected, _ = input_covariance(x, geometry, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16), precision.full_precision(x.device):
        actual, _ = input_covariance(x, geometry, dtype=torch.float32)
    assert torch.equal(actual, expected)

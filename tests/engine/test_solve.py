"""The solve's buffers: the factor overwrites the matrix (or, in place, the covariance itself), the caller's G is
never written, and a covariance that needs the rescue is reported rather than factorized wrongly."""

from __future__ import annotations

import pytest
import torch

from tract_hub.engine.solve import factorize, factorize_in_place, solve_with_factor


def covariance(features: int = 6, rows: int = 40, groups: int = 2) -> torch.Tensor:
    x = torch.randn(groups, rows, features, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return x.mT @ x


def test_factorize_in_place_gives_the_factor_in_the_covariances_storage() -> None:
    cov = covariance()
    expected = factorize(cov, 40, 0.1)
    pointer = cov.data_ptr()
    factor = factorize_in_place(cov, 40, 0.1)
    assert factor is not None and factor.data_ptr() == pointer
    torch.testing.assert_close(factor, expected, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(factor @ factor.mT, covariance() / 40 + 0.1 * torch.eye(6, dtype=torch.float64))


def test_factorize_in_place_reports_a_matrix_that_needs_the_rescue() -> None:
    cov = covariance()
    cov[1].diagonal().sub_(cov[1].diagonal().max() * 2)  # indefinite even after lam
    assert factorize_in_place(cov, 40, 1e-6) is None


def test_factorize_in_place_refuses_what_it_cannot_overwrite() -> None:
    with pytest.raises(ValueError, match="float64 CPU covariance"):
        factorize_in_place(covariance().float(), 40, 0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_solve_leaves_the_callers_gradient_alone(dtype: torch.dtype) -> None:
    grad = torch.randn(4, 6, dtype=dtype)
    before = grad.clone()
    matrix = covariance(groups=1)[0] / 40 + 0.1 * torch.eye(6, dtype=torch.float64)
    solved = solve_with_factor(grad, factorize(covariance(groups=1), 40, 0.1))
    assert torch.equal(grad, before)
    expected = (grad.double() @ torch.linalg.inv(matrix)).to(dtype)
    torch.testing.assert_close(solved, expected, rtol=1e-5, atol=1e-6)


def test_the_solve_is_differentiable_in_the_gradient() -> None:
    grad = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    factor = factorize(covariance(groups=1), 40, 0.1)
    torch.autograd.gradcheck(lambda g: solve_with_factor(g, factor), (grad,))

"""The regularized solve ``G @ inverse(x^T x / N + lam * I)``, per group.

Precision: the ``n x n`` matrix is factorized (Cholesky) and the solve is done in float64 whatever the model's
dtype (``n`` is at most a few hundred, so this costs little next to the covariance), and the result is cast to the
dtype of ``G``.

Finite input never gives NaN (DESIGN decision 5). ``x^T x / N + lam * I`` is positive definite in exact
arithmetic, but the rounding of the summed covariance (float32 sums of inputs far from unit scale) or of the
factorization itself (a tiny ``lam``) can make it fail to factorize. A failed group is then factorized again with
a diagonal shift of the size of that rounding error (:data:`RESCUE_SHIFTS`, relative to the mean diagonal), and
again with larger shifts until one succeeds: a finite gradient whose regularization is slightly larger than
asked, in place of NaN. On the CPU the retries run only when needed (reading the outcome on the host costs
nothing there); on accelerators every rung is computed and chosen with ``torch.where``, so nothing waits for
the device.

Non-finite input never raises: a NaN or inf in ``x`` makes every factorization fail and gives a gradient of NaNs;
a NaN or inf in ``G`` propagates through the solve. Either way AMP's GradScaler sees it and skips the step.

Example:
    >>> import torch
    >>> grad, x = torch.randn(4, 3), torch.randn(100, 3)
    >>> out = solve_with_covariance(grad, (x.T @ x)[None], rows=100, lam=0.1)
    >>> torch.allclose(out, grad @ torch.linalg.inv(x.T @ x / 100 + 0.1 * torch.eye(3)), atol=1e-5)
    True
"""

from __future__ import annotations

import torch

#: Diagonal shifts (relative to the mean diagonal) tried in turn when a factorization fails, by the dtype the
#: covariance was summed in: the first is of the size of that dtype's rounding error on a covariance (about 10
#: units in the last place of its largest entries), the later ones are safety rungs.
RESCUE_SHIFTS: dict[torch.dtype, tuple[float, ...]] = {
    torch.float32: (1e-6, 1e-4, 1e-2),
    torch.float64: (1e-13, 1e-9, 1e-5),
}


def grouped(grad: torch.Tensor, groups: int) -> torch.Tensor:
    """(m, ...) weight-shaped gradient -> (groups, m / groups, n)."""
    return grad.reshape(groups, grad.shape[0] // groups, -1)


def regularized(cov: torch.Tensor, rows: float | torch.Tensor, lam: float) -> torch.Tensor:
    """``cov / rows + lam * I`` in float64; no rows at all (only empty batches) count as one, giving ``lam * I``."""
    rows = rows.clamp_min(1) if isinstance(rows, torch.Tensor) else max(rows, 1)
    matrix = cov.to(torch.float64) / rows
    matrix.diagonal(dim1=-2, dim2=-1).add_(lam)
    return matrix


def _shifted(matrix: torch.Tensor, relative: float | torch.Tensor) -> torch.Tensor:
    scale = matrix.diagonal(dim1=-2, dim2=-1).mean(-1) * relative
    shifted = matrix.clone()
    shifted.diagonal(dim1=-2, dim2=-1).add_(scale[:, None])
    return shifted


def factorize(matrix: torch.Tensor, summed_in: torch.dtype = torch.float64) -> torch.Tensor:
    """Cholesky factor of each group of ``matrix`` (float64, ``(groups, n, n)``), rescued by diagonal shifts where it
    fails (see the module docstring); a group that fails every rung (non-finite input) gives a factor of NaNs."""
    shifts = RESCUE_SHIFTS.get(summed_in, RESCUE_SHIFTS[torch.float32])
    factor, info = torch.linalg.cholesky_ex(matrix)
    if matrix.device.type == "cpu":
        if not bool(info.any()):
            return factor
        finite = torch.isfinite(matrix).flatten(1).all(1)
        for shift in shifts:
            failed = (info != 0) & finite
            if not bool(failed.any()):
                break
            factor[failed], info[failed] = torch.linalg.cholesky_ex(_shifted(matrix[failed], shift))
    else:
        for shift in shifts:
            relative = (info != 0).to(matrix.dtype) * shift
            retry, retry_info = torch.linalg.cholesky_ex(_shifted(matrix, relative))
            factor = torch.where((info == 0)[:, None, None], factor, retry)
            info = torch.where(info == 0, info, retry_info)
    return torch.where((info != 0)[:, None, None], torch.full_like(factor, float("nan")), factor)


def solve_with_factor(grad: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``G @ inverse(L L^T)`` per group for the Cholesky factor ``L`` of :func:`factorize`, cast to ``G``'s dtype.
    Differentiable in ``grad`` (the factor is a constant)."""
    by_group = grouped(grad, factor.shape[0]).to(torch.float64)
    solved = torch.cholesky_solve(by_group.transpose(1, 2), factor).transpose(1, 2)
    return solved.reshape(grad.shape).to(grad.dtype)


def solve_with_covariance(
    grad: torch.Tensor,
    cov: torch.Tensor,
    rows: float | torch.Tensor,
    lam: float,
    *,
    summed_in: torch.dtype | None = None,
) -> torch.Tensor:
    """``G @ inverse(cov / rows + lam * I)`` per group, in float64, cast back to ``grad``'s dtype.

    Args:
        grad: the ordinary weight gradient, weight-shaped (``m x ...``), ``m`` divisible by the groups.
        cov: ``(groups, n, n)`` sum of ``row^T row`` over the input rows (float32 or float64).
        rows: number of rows ``N`` summed into ``cov`` (a number or a 0-d tensor on ``cov``'s device).
        lam: the regularization ``lambda > 0``.
        summed_in: the least precise dtype any part of ``cov`` was summed in (default: ``cov``'s dtype); it sets
            the size of the rescue shifts.
    """
    factor = factorize(regularized(cov, rows, lam), summed_in or cov.dtype)
    return solve_with_factor(grad, factor)

"""The regularized solve ``G @ inverse(x^T x / N + lam * I)``, per group, with a fixed dtype policy.

Dtype policy:
    * the covariance is summed in float32 (float64 for float64 inputs); when the bound
      ``1 + trace(x^T x / N) / lam`` on the condition number exceeds :data:`FLOAT32_CONDITION_LIMIT` (inputs
      far from unit scale, e.g. pixels in [0, 255]), it is summed again in float64 (:func:`ill_conditioned`,
      used by :func:`tract_hub.engine.covariance_for_solve`);
    * the matrix is factorized with a Cholesky decomposition in the covariance's dtype; a float32
      factorization that fails is redone in float64;
    * the result is cast to the dtype of ``G``.

Non-finite policy: a NaN or inf in ``x`` or ``G`` never raises. A non-finite matrix fails its Cholesky
factorization and gives a gradient of NaNs; a non-finite ``G`` propagates through the solve. Either way AMP's
GradScaler sees an inf/NaN and skips the step.

Example:
    >>> import torch
    >>> grad, x = torch.randn(4, 3), torch.randn(100, 3)
    >>> out = solve_with_covariance(grad, (x.T @ x)[None], rows=100, lam=0.1)
    >>> torch.allclose(out, grad @ torch.linalg.inv(x.T @ x / 100 + 0.1 * torch.eye(3)), atol=1e-5)
    True
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

#: Above this bound on the condition number, float32 would lose more than about 1e-2 relative accuracy.
FLOAT32_CONDITION_LIMIT = 1e5


def _grouped(grad: torch.Tensor, groups: int) -> torch.Tensor:
    """(m, ...) weight-shaped gradient -> (groups, m / groups, n)."""
    return grad.reshape(groups, grad.shape[0] // groups, -1)


def _cholesky(matrix: torch.Tensor) -> torch.Tensor | None:
    """Cholesky factor in the matrix's dtype, retried in float64; ``None`` when that fails too.

    LAPACK and cuSOLVER report a NaN pivot as a failure, so a non-finite matrix ends here (one device sync).
    """
    factor, info = torch.linalg.cholesky_ex(matrix)
    if not info.any().item():
        return factor
    if matrix.dtype != torch.float64:
        logger.debug("TrAct: %s Cholesky failed; retrying in float64", matrix.dtype)
        factor, info = torch.linalg.cholesky_ex(matrix.to(torch.float64))
        if not info.any().item():
            return factor
    return None


def ill_conditioned(cov: torch.Tensor, rows: int | float, lam: float) -> bool:
    """Whether ``cov / rows + lam * I`` is too ill-conditioned for float32: its condition number is at most
    ``1 + max trace(cov / rows) / lam``, compared with :data:`FLOAT32_CONDITION_LIMIT` (one device sync).

    A non-finite covariance is not "ill-conditioned": the non-finite policy handles it.
    """
    trace_max = cov.diagonal(dim1=-2, dim2=-1).sum(-1).max().item()
    return 1.0 + trace_max / max(rows, 1) / lam > FLOAT32_CONDITION_LIMIT


def solve_with_covariance(grad: torch.Tensor, cov: torch.Tensor, rows: int | float, lam: float) -> torch.Tensor:
    """``G @ inverse(cov / rows + lam * I)`` per group, factorized in the covariance's dtype.

    Args:
        grad: the ordinary weight gradient, weight-shaped (``m x ...``), ``m`` divisible by the groups.
        cov: ``(groups, n, n)`` sum of ``row^T row`` over the input rows (float32 or float64).
        rows: number of rows ``N`` summed into ``cov``.
        lam: the regularization ``lambda > 0``.
    """
    matrix = cov / rows
    matrix.diagonal(dim1=-2, dim2=-1).add_(lam)
    factor = _cholesky(matrix)
    if factor is None:
        return torch.full_like(grad, float("nan"))
    grouped = _grouped(grad, cov.shape[0])
    if grouped.dtype != factor.dtype:
        grouped = grouped.to(factor.dtype)
    solved = torch.cholesky_solve(grouped.transpose(1, 2), factor)
    return solved.transpose(1, 2).reshape(grad.shape).to(grad.dtype)


def solve_with_rows(grad: torch.Tensor, rows: torch.Tensor, lam: float) -> torch.Tensor:
    """The same result from the rows themselves through the Woodbury identity: cheaper when ``N < n``.

    ``(x^T x / N + lam I)^-1 = (I - x^T (x x^T + N lam I)^-1 x) / lam``, so only an ``N x N`` matrix is factorized.
    ``G`` lies in the row space of ``x``, so the subtraction cancels most of ``G`` (by about ``N lam / |x|^2``);
    the whole computation therefore runs in float64, which costs little since ``N < n`` keeps every matrix small.

    Args:
        grad: the ordinary weight gradient, weight-shaped.
        rows: ``(N, groups, n)`` input rows.
        lam: the regularization ``lambda > 0``.
    """
    count, groups, _ = rows.shape
    by_group = rows.transpose(0, 1).to(torch.float64)  # (groups, N, n)
    kernel = by_group @ by_group.transpose(1, 2)  # (groups, N, N)
    kernel.diagonal(dim1=-2, dim2=-1).add_(count * lam)
    factor = _cholesky(kernel)
    if factor is None:
        return torch.full_like(grad, float("nan"))
    grouped = _grouped(grad, groups).to(torch.float64)  # (groups, m_g, n)
    projected = grouped @ by_group.transpose(1, 2)  # (groups, m_g, N)
    weights = torch.cholesky_solve(projected.transpose(1, 2), factor)  # (groups, N, m_g)
    solved = (grouped - weights.transpose(1, 2) @ by_group) / lam
    return solved.reshape(grad.shape).to(grad.dtype)

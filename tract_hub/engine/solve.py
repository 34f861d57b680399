"""The regularized solve ``G @ inverse(x^T x / N + lam * I)``, per group, without a host-device sync.

Precision: the ``n x n`` matrix is factorized (Cholesky) and the solve is done in float64 whatever the model's
dtype (``n`` is at most a few hundred, so this costs little next to the covariance), and the result is cast to the
dtype of ``G``. A covariance summed in float32 (see :func:`tract_hub.engine.covariance_dtype`) can miss positive
definiteness by its rounding error when the inputs are far from unit scale; a factorization that fails for that
reason is redone with a diagonal shift of the size of that rounding error.

Non-finite policy: a NaN or inf in ``x`` or ``G`` never raises. A failed factorization gives a gradient of NaNs
(chosen with ``torch.where`` on the device, never by Python on a tensor) and a non-finite ``G`` propagates through
the solve. Either way AMP's GradScaler sees an inf/NaN and skips the step.

Example:
    >>> import torch
    >>> grad, x = torch.randn(4, 3), torch.randn(100, 3)
    >>> out = solve_with_covariance(grad, (x.T @ x)[None], rows=100, lam=0.1)
    >>> torch.allclose(out, grad @ torch.linalg.inv(x.T @ x / 100 + 0.1 * torch.eye(3)), atol=1e-5)
    True
"""

from __future__ import annotations

import torch

#: Relative size of the diagonal shift that rescues the factorization of a float32-summed covariance whose
#: rounding error (about 1e-7 of its largest entries) made it indefinite.
FLOAT32_RESCUE_SHIFT = 1e-6


def grouped(grad: torch.Tensor, groups: int) -> torch.Tensor:
    """(m, ...) weight-shaped gradient -> (groups, m / groups, n)."""
    return grad.reshape(groups, grad.shape[0] // groups, -1)


def _regularized(cov: torch.Tensor, rows: float | torch.Tensor, lam: float) -> torch.Tensor:
    """``cov / rows + lam * I`` in float64; no rows at all (only empty batches) count as one, giving ``lam * I``."""
    rows = rows.clamp_min(1) if isinstance(rows, torch.Tensor) else max(rows, 1)
    matrix = cov.to(torch.float64) / rows
    matrix.diagonal(dim1=-2, dim2=-1).add_(lam)
    return matrix


def _factor(matrix: torch.Tensor, rescue: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Cholesky factor and a per-group failure flag; with ``rescue``, a failed group is factorized again with a
    small diagonal shift (both decided on the device)."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    if rescue:
        scale = matrix.diagonal(dim1=-2, dim2=-1).mean(-1)
        shift = torch.where(info != 0, scale * FLOAT32_RESCUE_SHIFT, torch.zeros_like(scale))
        shifted = matrix + shift[:, None, None] * torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
        factor, info = torch.linalg.cholesky_ex(shifted)
    return factor, info != 0


def solve_with_covariance(
    grad: torch.Tensor, cov: torch.Tensor, rows: float | torch.Tensor, lam: float
) -> torch.Tensor:
    """``G @ inverse(cov / rows + lam * I)`` per group, in float64, cast back to ``grad``'s dtype.

    Args:
        grad: the ordinary weight gradient, weight-shaped (``m x ...``), ``m`` divisible by the groups.
        cov: ``(groups, n, n)`` sum of ``row^T row`` over the input rows (float32 or float64).
        rows: number of rows ``N`` summed into ``cov`` (a number or a 0-d tensor on ``cov``'s device).
        lam: the regularization ``lambda > 0``.
    """
    factor, failed = _factor(_regularized(cov, rows, lam), rescue=cov.dtype != torch.float64)
    by_group = grouped(grad, cov.shape[0]).to(torch.float64)
    solved = torch.cholesky_solve(by_group.transpose(1, 2), factor).transpose(1, 2)
    solved = torch.where(failed[:, None, None], torch.full_like(solved, float("nan")), solved)
    return solved.reshape(grad.shape).to(grad.dtype)

"""The regularized solve ``G @ inverse(x^T x / N + lam * I)``, per group.

Precision: the ``n x n`` matrix is factorized (Cholesky) and the solve is done in float64 whatever the model's
dtype, and the result is cast to the dtype of ``G``.

Buffers: the regularized matrix is written once, column by column, and factorized where it lies (on the CPU; the
per-call path even factorizes the call's covariance in place, :func:`factorize_in_place`); the two triangular
solves run from the right in a float64 copy of ``G``. Besides ``G``'s copy and the result, one ``n x n`` float64
buffer per group is all the solve allocates.

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


def _at_least_one(rows: float | torch.Tensor) -> float | torch.Tensor:
    return rows.clamp_min(1) if isinstance(rows, torch.Tensor) else max(rows, 1)


def regularized(
    cov: torch.Tensor, rows: float | torch.Tensor, lam: float, workspace: torch.Tensor | None = None
) -> torch.Tensor:
    """``cov / rows + lam * I`` as a float64 matrix, each group laid out column by column (as LAPACK factorizes it
    in place), in ``workspace`` (a contiguous float64 tensor shaped like ``cov`` whose contents are not needed any
    more) or a new tensor; no rows at all (only empty batches) count as one, giving ``lam * I``."""
    if workspace is None:
        workspace = torch.empty(cov.shape, dtype=torch.float64, device=cov.device)
    matrix = workspace.mT
    torch.div(cov.mT, _at_least_one(rows), out=matrix)  # cov is symmetric: read it in the order the matrix is written
    matrix.diagonal(dim1=-2, dim2=-1).add_(lam)
    return matrix


def _cholesky_in_place(matrix: torch.Tensor) -> torch.Tensor:
    """Overwrite each group of ``matrix`` with its Cholesky factor; the groups' ``info`` (0: factorized)."""
    info = torch.empty(matrix.shape[:-2], dtype=torch.int32, device=matrix.device)
    torch.linalg.cholesky_ex(matrix, out=(matrix, info))
    return info


def factorize_in_place(cov: torch.Tensor, rows: float | torch.Tensor, lam: float) -> torch.Tensor | None:
    """:func:`factorize` into ``cov``'s own storage, saving a buffer, for a float64 ``cov`` on the CPU (symmetric,
    as the engine sums it); ``None`` if a group needs the rescue, ``cov`` being lost then (sum it again and call
    :func:`factorize`)."""
    if cov.device.type != "cpu" or cov.dtype != torch.float64:
        raise ValueError(f"factorize_in_place takes a float64 CPU covariance, not {cov.dtype} on {cov.device}")
    matrix = cov.mT  # cov is symmetric: this is the same matrix, laid out column by column
    matrix.div_(_at_least_one(rows)).diagonal(dim1=-2, dim2=-1).add_(lam)
    return None if bool(_cholesky_in_place(matrix).any()) else matrix


def factorize(
    cov: torch.Tensor,
    rows: float | torch.Tensor,
    lam: float,
    summed_in: torch.dtype = torch.float64,
    workspace: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cholesky factor of each group of ``cov / rows + lam * I`` (float64, ``(groups, n, n)``), rescued by diagonal
    shifts where it fails (see the module docstring); a group that fails every rung (non-finite input) gives a
    factor of NaNs. On the CPU the factor overwrites the matrix: one ``n x n`` float64 buffer per group, the
    ``workspace`` if given (see :func:`regularized`)."""
    shifts = RESCUE_SHIFTS.get(summed_in, RESCUE_SHIFTS[torch.float32])
    matrix = regularized(cov, rows, lam, workspace)
    scale = matrix.diagonal(dim1=-2, dim2=-1).mean(-1)
    if matrix.device.type != "cpu":
        return _factorize_on_device(matrix, scale, shifts)
    info = _cholesky_in_place(matrix)
    if not bool(info.any()):
        return matrix
    finite = torch.isfinite(cov).flatten(1).all(1)
    for shift in shifts:
        failed = (info != 0) & finite
        if not bool(failed.any()):
            break
        retry = regularized(cov[failed], rows, lam)
        retry.diagonal(dim1=-2, dim2=-1).add_(scale[failed, None] * shift)
        info[failed] = _cholesky_in_place(retry)
        matrix[failed] = retry
    matrix[info != 0] = float("nan")
    return matrix


def _factorize_on_device(matrix: torch.Tensor, scale: torch.Tensor, shifts: tuple[float, ...]) -> torch.Tensor:
    """:func:`factorize` with every rung computed and chosen with ``torch.where`` (nothing waits for the device)."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    for shift in shifts:
        retry = matrix.clone()
        retry.diagonal(dim1=-2, dim2=-1).add_(scale[:, None] * (info != 0).to(matrix.dtype) * shift)
        retry_factor, retry_info = torch.linalg.cholesky_ex(retry)
        factor = torch.where((info == 0)[:, None, None], factor, retry_factor)
        info = torch.where(info == 0, info, retry_info)
    return torch.where((info != 0)[:, None, None], torch.full_like(factor, float("nan")), factor)


def solve_with_factor(grad: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``G @ inverse(L L^T)`` per group for the Cholesky factor ``L`` of :func:`factorize`, cast to ``G``'s dtype:
    two triangular solves from the right, in place in a float64 copy of ``G`` unless ``G`` needs a gradient
    (differentiable in ``G``; the factor is a constant)."""
    by_group = grouped(grad, factor.shape[0]).to(torch.float64, copy=True)
    if torch.is_grad_enabled() and grad.requires_grad:
        solved = torch.linalg.solve_triangular(factor.mT, by_group, upper=True, left=False)
        solved = torch.linalg.solve_triangular(factor, solved, upper=False, left=False)
    else:
        solved = torch.linalg.solve_triangular(factor.mT, by_group, upper=True, left=False, out=by_group)
        solved = torch.linalg.solve_triangular(factor, solved, upper=False, left=False, out=by_group)
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
    return solve_with_factor(grad, factorize(cov, rows, lam, summed_in or cov.dtype))

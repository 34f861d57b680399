"""The gradient math of TrAct: pure functions on tensors, knowing nothing of models or patching.

Example:
    >>> import torch
    >>> from tract_hub.engine import LayerGeometry, tract_gradient
    >>> x, grad = torch.randn(32, 3, 8, 8), torch.randn(16, 3, 3, 3)
    >>> geometry = LayerGeometry.for_conv(torch.empty(16, 3, 3, 3), padding=1)
    >>> tract_gradient(grad, x, geometry, lam=0.1).shape
    torch.Size([16, 3, 3, 3])
"""

from __future__ import annotations

import torch

from .covariance import accumulation_dtype, chunk_bytes, input_covariance, unfold_rows
from .geometry import LayerGeometry
from .solve import FLOAT32_CONDITION_LIMIT, ill_conditioned, solve_with_covariance, solve_with_rows


def covariance_for_solve(
    x: torch.Tensor, geometry: LayerGeometry, lam: float, *, max_chunk_bytes: int | None = None
) -> tuple[torch.Tensor, int]:
    """``x^T x`` (per group, summed over rows) and ``N``, summed in float32 unless that is too ill-conditioned
    for ``lam`` (inputs far from unit scale), in which case it is summed again in float64."""
    cov, rows = input_covariance(x, geometry, max_chunk_bytes=max_chunk_bytes)
    if cov.dtype != torch.float64 and ill_conditioned(cov, rows, lam):
        cov, rows = input_covariance(x, geometry, dtype=torch.float64, max_chunk_bytes=max_chunk_bytes)
    return cov, rows


def tract_gradient(
    grad: torch.Tensor,
    x: torch.Tensor,
    geometry: LayerGeometry,
    lam: float,
    *,
    max_chunk_bytes: int | None = None,
) -> torch.Tensor:
    """The TrAct weight gradient ``G @ inverse(x^T x / N + lam * I)`` of one layer call.

    Uses the Woodbury form when the call has fewer rows than features (``N < n``), the chunked covariance
    otherwise. ``grad`` is the ordinary weight gradient (weight-shaped); the result has its shape and dtype.
    An input with no rows (an empty batch) leaves ``grad`` as it is.
    """
    rows = geometry.rows(x)
    if rows == 0:
        return grad
    if rows < geometry.features:
        return solve_with_rows(grad, unfold_rows(x, geometry), lam)
    cov, rows = covariance_for_solve(x, geometry, lam, max_chunk_bytes=max_chunk_bytes)
    return solve_with_covariance(grad, cov, rows, lam)


__all__ = [
    "FLOAT32_CONDITION_LIMIT",
    "LayerGeometry",
    "accumulation_dtype",
    "chunk_bytes",
    "covariance_for_solve",
    "ill_conditioned",
    "input_covariance",
    "solve_with_covariance",
    "solve_with_rows",
    "tract_gradient",
    "unfold_rows",
]

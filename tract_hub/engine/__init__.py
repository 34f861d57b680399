"""The gradient math of TrAct: pure functions on tensors, knowing nothing of models or patching.

Nothing here reads a tensor's value on the host: every data-dependent choice is made on the device, so a GPU
backward never waits for the GPU to drain.

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

from .accumulation import Accumulation
from .covariance import input_covariance, input_covariance_with_summation, summation_for
from .geometry import LayerGeometry
from .precision import Summation, covariance_dtype, forced_summation, full_precision
from .solve import solve_with_covariance


def tract_gradient(
    grad: torch.Tensor,
    x: torch.Tensor,
    geometry: LayerGeometry,
    lam: float,
    *,
    max_chunk_bytes: int | None = None,
) -> torch.Tensor:
    """The TrAct weight gradient ``G @ inverse(x^T x / N + lam * I)`` of one layer call.

    ``grad`` is the ordinary weight gradient (weight-shaped); the result has its shape and dtype. An input with no
    rows (an empty batch) leaves ``grad`` as it is.
    """
    rows = geometry.rows(x)
    if rows == 0:
        return grad
    with full_precision(x.device):
        cov, rows, summation = input_covariance_with_summation(x, geometry, lam=lam, max_chunk_bytes=max_chunk_bytes)
        return solve_with_covariance(grad, cov, rows, lam, summed_in=summation.dtype)


__all__ = [
    "Accumulation",
    "LayerGeometry",
    "Summation",
    "covariance_dtype",
    "forced_summation",
    "full_precision",
    "input_covariance",
    "input_covariance_with_summation",
    "solve_with_covariance",
    "summation_for",
    "tract_gradient",
]

"""Running sums that make TrAct exact however a batch is split: micro-batches, data-parallel ranks, or both.

``G`` is linear in the samples, and so are ``x^T x`` and ``N``. An :class:`Accumulation` keeps, for one layer, the
sum of the ordinary gradients ``G`` since the layer's gradient was last cleared, the covariance and row count of
the same inputs, and the TrAct gradient ``T = solve(sum G, sum x^T x, sum N)`` it has handed out so far. Each new
backward adds its terms and hands out the *increment* ``T_new - T_old``, so the gradient that autograd accumulates
is ``T`` of everything since the last clear. Because the solve is linear in ``G``, averaging those increments over
ranks (DDP, FSDP) gives ``T`` of the averaged ``G``, provided the covariance is summed over the ranks too:
:meth:`Accumulation.unreduced` and :meth:`Accumulation.add_reduced` carry that part (one small all-reduce).

Every decision here is taken on the device (``torch.where``); nothing reads a tensor on the host.

Example:
    >>> import torch
    >>> from tract_hub.engine import solve_with_covariance
    >>> x1, x2, g1, g2 = torch.randn(6, 3), torch.randn(4, 3), torch.randn(2, 3), torch.randn(2, 3)
    >>> acc = Accumulation.empty(g1, groups=1)
    >>> acc.add(g1, (x1.T @ x1)[None], 6); first = acc.increment(0.1)
    >>> acc.add(g2, (x2.T @ x2)[None], 4); second = acc.increment(0.1)
    >>> x = torch.cat([x1, x2])
    >>> whole = solve_with_covariance(g1 + g2, (x.T @ x)[None], 10, 0.1)
    >>> torch.allclose(first + second, whole, atol=1e-5)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .solve import solve_with_covariance


def _sum_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


@dataclass
class Accumulation:
    """One layer's sums since its gradient was last cleared (see the module docstring).

    Attributes:
        raw: sum of the ordinary gradients ``G`` of the weight the layer used (float32, float64 for float64).
        cov: ``(groups, n, n)`` float64 covariance summed over rows, micro-batches and (once reduced) ranks.
        rows: 0-d float64 count of the rows in ``cov``.
        pending_cov, pending_rows: this rank's part not yet summed over the ranks.
        handed_out: the TrAct gradient handed out so far, ``solve(raw, cov + pending_cov, rows + pending_rows)``.
    """

    raw: torch.Tensor
    cov: torch.Tensor
    rows: torch.Tensor
    pending_cov: torch.Tensor
    pending_rows: torch.Tensor
    handed_out: torch.Tensor

    @classmethod
    def empty(cls, grad: torch.Tensor, groups: int) -> Accumulation:
        """Zeros for a layer whose weight gradient is shaped like ``grad`` with ``groups`` groups."""
        n = grad[0].numel()
        zeros = torch.zeros(groups, n, n, dtype=torch.float64, device=grad.device)
        scalar = torch.zeros((), dtype=torch.float64, device=grad.device)
        raw = torch.zeros(grad.shape, dtype=_sum_dtype(grad.dtype), device=grad.device)
        return cls(raw, zeros, scalar, zeros.clone(), scalar.clone(), raw.clone())

    def clear_where(self, cleared: torch.Tensor) -> None:
        """Start over where the 0-d bool ``cleared`` is true (decided on the device, in place)."""
        for name in ("raw", "cov", "rows", "pending_cov", "pending_rows", "handed_out"):
            tensor = getattr(self, name)
            tensor.copy_(torch.where(cleared, torch.zeros_like(tensor), tensor))

    def add(self, grad: torch.Tensor, cov: torch.Tensor, rows: int | torch.Tensor) -> None:
        """Add one layer call's ordinary gradient and its (this rank's) covariance and row count."""
        self.raw += grad.to(self.raw.dtype)
        self.pending_cov += cov.to(torch.float64)
        self.pending_rows += rows

    def unreduced(self) -> torch.Tensor:
        """The part to sum over ranks, as one flat float64 buffer (covariance, then the row count)."""
        return torch.cat([self.pending_cov.flatten(), self.pending_rows.reshape(1)])

    def add_reduced(self, buffer: torch.Tensor) -> None:
        """Take the rank-summed buffer of :meth:`unreduced` into the totals."""
        self.cov += buffer[:-1].view_as(self.cov)
        self.rows += buffer[-1]
        self.pending_cov.zero_()
        self.pending_rows.zero_()

    def increment(self, lam: float) -> torch.Tensor:
        """The TrAct gradient of everything accumulated, minus what was handed out before (which it replaces)."""
        total = solve_with_covariance(self.raw, self.cov + self.pending_cov, self.rows + self.pending_rows, lam)
        delta = total - self.handed_out
        self.handed_out = total
        return delta

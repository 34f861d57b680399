"""Running sums that make TrAct exact however a batch is split: micro-batches, data-parallel ranks, or both.

``G`` is linear in the samples, and so are ``x^T x`` and ``N``. An :class:`Accumulation` keeps, for one layer, the
sum of the ordinary gradients ``G`` since the layer's gradient was last cleared, the covariance and row count of
the same inputs, and the TrAct gradient ``T = solve(sum G, sum x^T x, sum N)`` it has handed out so far. Each new
backward adds its terms and hands out the *increment* ``T_new - T_old``, so the gradient that autograd accumulates
is ``T`` of everything since the last clear. Because the solve is linear in ``G``, averaging those increments over
ranks (DDP, FSDP) gives ``T`` of the averaged ``G``, provided the covariance is summed over the ranks too: the
covariance of this rank that is not summed yet is kept apart (:meth:`Accumulation.take_pending`) until it is.

Every decision here is taken on the device (``torch.where``); nothing reads a tensor on the host. The buffers are
allocated once per layer and zeroed in place when the gradient is cleared.

Example:
    >>> import torch
    >>> from tract_hub.engine import solve_with_covariance
    >>> x1, x2, g1, g2 = torch.randn(6, 3), torch.randn(4, 3), torch.randn(2, 3), torch.randn(2, 3)
    >>> acc = Accumulation.empty(g1, groups=1)  # one process: no part kept apart for the ranks
    >>> acc.add_gradient(g1); acc.add_local((x1.T @ x1)[None], 6); first, _ = acc.increment(0.1)
    >>> acc.add_gradient(g2); acc.add_local((x2.T @ x2)[None], 4); second, _ = acc.increment(0.1)
    >>> x = torch.cat([x1, x2])
    >>> whole = solve_with_covariance(g1 + g2, (x.T @ x)[None], 10, 0.1)
    >>> torch.allclose(first + second, whole, atol=1e-5)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .solve import factorize, solve_with_factor


def _sum_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _least_precise(first: torch.dtype, second: torch.dtype) -> torch.dtype:
    return first if torch.finfo(first).eps >= torch.finfo(second).eps else second


@dataclass
class Accumulation:
    """One layer's sums since its gradient was last cleared (see the module docstring).

    Attributes:
        raw: sum of the ordinary gradients ``G`` of the weight the layer used (float32, float64 for float64).
        cov: ``(groups, n, n)`` float64 covariance summed over rows, micro-batches and (once reduced) ranks.
        rows: 0-d float64 count of the rows in ``cov``.
        pending_cov, pending_rows: this rank's part not yet summed over the ranks (``None`` on one process, where
            every covariance goes straight into ``cov``).
        handed_out: the TrAct gradient handed out so far, ``solve(raw, cov + pending_cov, rows + pending_rows)``.
        generation: 0-d int64, incremented at every clear (on the device when the clear is decided there).
        summed_in: the least precise dtype any covariance added since the last clear was summed in (it sizes the
            solve's rescue; a clear decided on the device keeps the old value, which is only more cautious).
        cov_cleared: the host knows ``cov`` is zero without having written the zeros yet (after :meth:`clear`):
            the next covariance added takes its place instead of being added (no ``n x n`` zeroing, no addition,
            and no second ``n x n`` buffer while adding); anything else that reads ``cov`` zeroes it first.
        spare: the ``cov`` buffer a taken-over covariance replaced, until the next factorization writes its matrix
            there (no fresh ``n x n`` allocation in the common step).
    """

    raw: torch.Tensor
    cov: torch.Tensor
    rows: torch.Tensor
    pending_cov: torch.Tensor | None
    pending_rows: torch.Tensor | None
    handed_out: torch.Tensor
    generation: torch.Tensor
    summed_in: torch.dtype = torch.float64
    cov_cleared: bool = False
    spare: torch.Tensor | None = None

    sum_dtype = staticmethod(_sum_dtype)

    @classmethod
    def empty(cls, grad: torch.Tensor, groups: int, *, ranks: bool = False) -> Accumulation:
        """Zeros for a layer whose weight gradient is shaped like ``grad`` with ``groups`` groups; ``ranks``: keep
        this rank's part apart until it is summed over the ranks."""
        n = grad[0].numel()
        zeros = torch.zeros(groups, n, n, dtype=torch.float64, device=grad.device)
        scalar = torch.zeros((), dtype=torch.float64, device=grad.device)
        raw = torch.zeros(grad.shape, dtype=_sum_dtype(grad.dtype), device=grad.device)
        generation = torch.zeros((), dtype=torch.int64, device=grad.device)
        pending = (zeros.clone(), scalar.clone()) if ranks else (None, None)
        return cls(raw, zeros, scalar, *pending, raw.clone(), generation)

    def _sums(self) -> tuple[torch.Tensor, ...]:
        sums = (self.raw, self._cov(), self.rows, self.pending_cov, self.pending_rows, self.handed_out)
        return tuple(tensor for tensor in sums if tensor is not None)

    def _cov(self) -> torch.Tensor:
        """``cov``, its zeros written if :meth:`clear` left them pending."""
        if self.cov_cleared:
            self.cov.zero_()
            self.cov_cleared = False
        return self.cov

    def clear(self) -> None:
        """Start over (the caller saw the gradient cleared): zero the sums in place (``cov`` when first read, see
        ``cov_cleared``), next generation."""
        for tensor in (self.raw, self.rows, self.pending_cov, self.pending_rows, self.handed_out):
            if tensor is not None:
                tensor.zero_()
        self.cov_cleared = True
        self.generation += 1
        self.summed_in = torch.float64

    def clear_where(self, cleared: torch.Tensor) -> None:
        """Start over where the 0-d bool ``cleared`` is true (decided on the device, in place; NaN sums too)."""
        for tensor in self._sums():
            tensor.masked_fill_(cleared, 0)
        self.generation += cleared.to(torch.int64)

    def add_gradient(self, grad: torch.Tensor) -> None:
        """Add one layer call's ordinary weight gradient ``G``."""
        self.raw += grad.to(self.raw.dtype)

    def add_local(
        self, cov: torch.Tensor, rows: int | torch.Tensor, when: torch.Tensor | None = None, *, owned: bool = False
    ) -> None:
        """Add this rank's covariance and row count of one layer call (``when``: a 0-d bool decided on the device,
        e.g. whether the call's rows still need counting; ``None``: always). ``owned``: the caller hands ``cov``
        over (it will not read it again), so it may become the sum itself."""
        if when is not None:
            cov, rows = torch.where(when, cov, 0), torch.where(when, rows, 0)
            owned = True
        if self.pending_cov is None and self.cov_cleared and owned and self._adoptable(cov):
            self.spare, self.cov, self.cov_cleared = self.cov, cov, False
            self.rows += rows
        elif self.pending_cov is None:
            self._cov().add_(cov)
            self.rows += rows
        else:
            self.pending_cov += cov
            self.pending_rows += rows

    def _adoptable(self, cov: torch.Tensor) -> bool:
        like = self.cov
        return cov.shape == like.shape and cov.dtype == like.dtype and cov.device == like.device and cov.is_contiguous()

    def note_precision(self, dtype: torch.dtype) -> None:
        """Record that a covariance added here was summed in ``dtype`` (float32 sums carry float32 rounding in a
        float64 tensor; the solve's rescue is sized by it)."""
        self.summed_in = _least_precise(self.summed_in, dtype)

    def take_pending(self) -> torch.Tensor:
        """This rank's not yet reduced part as one flat float64 buffer (covariance, then the row count), zeroing it
        here: the caller sums it over the ranks and hands it back to :meth:`add_reduced`."""
        if self.pending_cov is None:  # kept on one process so far: nothing of it is this rank's alone
            return torch.zeros(self.cov.numel() + 1, dtype=torch.float64, device=self.cov.device)
        buffer = torch.cat([self.pending_cov.flatten(), self.pending_rows.reshape(1)])
        self.pending_cov.zero_()
        self.pending_rows.zero_()
        return buffer

    def add_reduced(self, buffer: torch.Tensor, when: torch.Tensor | None = None) -> None:
        """Add a rank-summed buffer in the form of :meth:`take_pending` to the totals (``when``: see
        :meth:`add_local`)."""
        if when is not None:
            buffer = torch.where(when, buffer, 0)
        self._cov().add_(buffer[:-1].view_as(self.cov))
        self.rows += buffer[-1]

    def factor(self, lam: float) -> torch.Tensor:
        """Cholesky factor of ``cov / rows + lam * I`` over everything accumulated (pending part included)."""
        workspace, self.spare = self.spare, None
        if self.pending_cov is None:
            return factorize(self._cov(), self.rows, lam, self.summed_in, workspace)
        return factorize(self._cov() + self.pending_cov, self.rows + self.pending_rows, lam, self.summed_in)

    def increment(self, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The TrAct gradient of everything accumulated minus what was handed out before (which it replaces), and
        the Cholesky factor it was solved with."""
        factor = self.factor(lam)
        total = solve_with_factor(self.raw, factor)
        delta = torch.sub(total, self.handed_out, out=self.handed_out)  # the old buffer becomes the increment
        self.handed_out = total
        return delta, factor

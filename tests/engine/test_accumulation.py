"""The accumulation's buffers: after a clear, the first covariance handed over becomes the sum itself (no zeroing,
no addition); one not handed over is never written; anything read after a clear reads zeros."""

from __future__ import annotations

import copy
import pickle

import torch

from tract_hub.engine import solve_with_covariance
from tract_hub.engine.accumulation import Accumulation


def gram(rows: int, seed: int) -> torch.Tensor:
    x = torch.randn(rows, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return (x.T @ x)[None]


def test_a_covariance_handed_over_after_a_clear_becomes_the_sum() -> None:
    acc = Accumulation.empty(torch.zeros(2, 3), groups=1)
    acc.add_local(gram(5, 0), 5)
    acc.clear()
    first, replaced = gram(6, 1), acc.cov
    acc.add_local(first, 6, owned=True)
    assert acc.cov is first and acc.spare is replaced
    factor = acc.factor(0.1)
    assert acc.spare is None and factor.data_ptr() == replaced.data_ptr()  # the replaced buffer holds the factor
    acc.add_local(gram(4, 2), 4, owned=True)  # not cleared any more: added
    torch.testing.assert_close(acc.cov, gram(6, 1) + gram(4, 2))
    assert float(acc.rows) == 10


def test_a_covariance_not_handed_over_is_never_written() -> None:
    acc = Accumulation.empty(torch.zeros(2, 3), groups=1)
    acc.clear()
    first, second = gram(6, 1), gram(4, 2)
    acc.add_local(first, 6)
    acc.add_local(second, 4)
    torch.testing.assert_close(first, gram(6, 1), rtol=0, atol=0)
    torch.testing.assert_close(acc.cov, gram(6, 1) + gram(4, 2))


def test_what_is_read_after_a_clear_is_zero() -> None:
    grad = torch.randn(2, 3)
    acc = Accumulation.empty(grad, groups=1)
    acc.add_gradient(grad)
    acc.add_local(gram(5, 0), 5)
    acc.clear()
    for copied in (copy.deepcopy(acc), pickle.loads(pickle.dumps(acc)), acc):
        copied.add_gradient(grad)
        copied.add_reduced(torch.cat([gram(7, 3).flatten(), torch.tensor([7.0], dtype=torch.float64)]))
        delta, _ = copied.increment(0.1)
        torch.testing.assert_close(delta, solve_with_covariance(grad, gram(7, 3), 7, 0.1))
    acc.clear()
    acc.clear_where(torch.tensor(False))  # a device-decided "not cleared" keeps the (zero) sums
    assert torch.count_nonzero(acc.cov) == 0

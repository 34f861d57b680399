"""One float64 model, a few micro-batches, and the float64 formula for what ``.grad`` must hold after them: the
shared pieces of the single-process loop tests.

Definition used throughout (README, "Exact by construction"): for the micro-batches since the last clear, the sum
of their ordinary weight gradients ``G`` (each taken at the weights of its own forward) times
``inverse(x^T x / N + lam I)`` over all of their input rows, with the ``lam`` the layer has at that backward.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

import tract_hub
from tests.reference import conv_rows, relative_error, tract_reference

LAM = 0.1
TOLERANCE = 1e-10  # float64 model


def make_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 36, 4))
    return model.double()


def micro_batch(index: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + index)
    x = torch.randn(4, 3, 6, 6, generator=generator, dtype=torch.float64) * 2 + 0.5
    return x, torch.randint(0, 4, (4,), generator=generator)


def loss_of(model: nn.Module, index: int) -> torch.Tensor:
    x, y = micro_batch(index)
    return F.cross_entropy(model(x), y, reduction="sum")


class Reference:
    """Ordinary gradients and input rows of the micro-batches that count, from an unpatched copy of the model
    taken at each micro-batch's own weights."""

    def __init__(self) -> None:
        self.grad: torch.Tensor | None = None
        self.rows: list[torch.Tensor] = []

    def clear(self) -> None:
        self.grad, self.rows = None, []

    def add(self, model: nn.Module, index: int, scale: float = 1.0) -> None:
        plain = tract_hub.unpatch(copy.deepcopy(model)) if tract_hub.is_patched(model) else copy.deepcopy(model)
        plain.zero_grad(set_to_none=True)
        (loss_of(plain, index) * scale).backward()
        grad = plain[0].weight.grad.detach().clone()
        self.grad = grad if self.grad is None else self.grad + grad
        self.rows.append(conv_rows(micro_batch(index)[0], (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1))

    def tract(self, lam: float = LAM) -> torch.Tensor:
        return tract_reference(self.grad, torch.cat(self.rows, dim=1), lam)


def backward(model: nn.Module, reference: Reference, index: int) -> None:
    reference.add(model, index)
    loss_of(model, index).backward()


def patched() -> nn.Module:
    return tract_hub.patch(make_model(), LAM, target="0")


def assert_exact(model: nn.Module, reference: Reference, lam: float = LAM) -> None:
    assert relative_error(model[0].weight.grad, reference.tract(lam)) < TOLERANCE

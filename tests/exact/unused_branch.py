"""A model whose first layer gets no gradient on some ranks, and the float64 update the whole batch gives.

Every rank runs the whole forward; rank 0's loss reads the stem's branch, the other ranks' losses read a branch
that skips the stem (an auxiliary head on the raw input). The stem's gradient ``G`` comes from rank 0's samples
only, while its input rows are all ranks' (every rank ran its forward), exactly as on one process with the
whole batch.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import tract_hub
from tests.exact.scenarios import BATCH, LAM, LR, global_batch
from tests.reference import conv_rows, tract_reference

MICRO_BATCHES = 2


class TwoBranches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 5, 3, padding=1)
        self.head = nn.Linear(5 * 36, 4)
        self.aux = nn.Linear(3 * 36, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(F.relu(self.stem(x)).flatten(1)), self.aux(x.flatten(1))


def branch_loss(outputs: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    main, aux = outputs
    return F.cross_entropy(main if rank == 0 else aux, y, reduction="sum") * world / BATCH


def rank_rows(world: int, rank: int) -> torch.Tensor:
    return torch.arange(BATCH).chunk(world)[rank]


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run(rank: int, world: int, wrapper: str) -> dict:
    """One SGD step of ``TwoBranches`` on this rank's rows, in ``MICRO_BATCHES`` micro-batches synchronized every
    backward: ``"ddp"`` (``find_unused_parameters=True``) or ``"process_group"`` (gradients averaged by hand)."""
    warnings = Warnings()
    logging.getLogger("tract_hub").addHandler(warnings)
    model = TwoBranches().double()
    manual = wrapper == "process_group"
    tract_hub.patch(model, LAM, target="stem", process_group=dist.group.WORLD if manual else None)
    wrapped = model if manual else nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = global_batch(torch.float64)
    before = model.stem.weight.detach().clone()
    for part in rank_rows(world, rank).chunk(MICRO_BATCHES):
        branch_loss(wrapped(x[part]), y[part], rank, world).backward()
        if manual:
            average_gradients(model, world)
    optimizer.step()
    logging.getLogger("tract_hub").removeHandler(warnings)
    return {"update": model.stem.weight.detach() - before, "warnings": warnings.messages}


def average_gradients(model: nn.Module, world: int) -> None:
    for parameter in model.parameters():
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad)
        parameter.grad /= world


def reference_update(world: int) -> torch.Tensor:
    """Float64, one process, the whole batch: each sample's loss from the branch its rank reads."""
    model = TwoBranches().double()
    x, y = global_batch(torch.float64)
    shares = [rank_rows(world, rank) for rank in range(world)]
    loss = sum(branch_loss(model(x[rows]), y[rows], rank, world) for rank, rows in enumerate(shares)) / world
    (grad,) = torch.autograd.grad(loss, model.stem.weight)
    rows = conv_rows(x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    return -LR * tract_reference(grad, rows, LAM)

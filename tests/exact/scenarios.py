"""Shared pieces of the exact-mode tests: one model, one global batch, how it is split, and the float64 reference
update computed from the formula on the whole batch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import tract_hub
from tests.reference import conv_rows, tract_reference

LAM = 0.1
BATCH = 8
LR = 0.1


@dataclass(frozen=True)
class Scenario:
    optimizer: str = "sgd"  # "sgd" or "adam"
    dtype: str = "float64"
    micro_batches: int = 1
    split: str = "even"  # "even" or "uneven" (different row counts per rank)
    mode: str = "exact"  # "exact" or "per_backward"
    layer: str = "conv"  # "conv" or "stdconv" (a weight standardized on the fly)
    poison_rank: int | None = None  # a rank whose input holds a NaN (run under a GradScaler)
    wrapper: str = "ddp"  # "ddp", "ddp-compiled" (DDP(torch.compile(model, fullgraph=True))) or "fsdp2"
    pixel_scale: float = 1.0  # e.g. 255: the second half of the batch as unnormalized pixels (ill-conditioned)
    no_sync: bool = True  # DDP: accumulate under no_sync() (one all-reduce per step) or synchronize every backward

    @property
    def key(self) -> str:
        return "-".join(f"{value}" for value in self.__dict__.values())

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


def make_model(scenario: Scenario) -> nn.Module:
    torch.manual_seed(0)
    if scenario.layer == "stdconv":
        from timm.layers import StdConv2d

        first: nn.Module = StdConv2d(3, 5, 3, padding=1)
    else:
        first = nn.Conv2d(3, 5, 3, padding=1)
    return nn.Sequential(first, nn.ReLU(), nn.Flatten(), nn.Linear(5 * 36, 4)).to(scenario.torch_dtype)


def global_batch(dtype: torch.dtype, pixel_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 3, 6, 6, generator=generator, dtype=torch.float64) * 2 + 0.5
    if pixel_scale != 1.0:  # on 2 ranks: rank 0 normalized (float32 covariance), rank 1 not (float64)
        x[BATCH // 2 :] = (x[BATCH // 2 :].sigmoid() * pixel_scale).round()
    return x.to(dtype), torch.randint(0, 4, (BATCH,), generator=generator)


def tolerance(scenario: Scenario) -> float:
    """Float64: 1e-10. Float32: 1e-5, or 1e-4 with unnormalized pixels, where the float32 gradient G itself
    (about 1e-6 off) is amplified by the ill-conditioned solve (measured: 3e-5, with or without TrAct's
    float64 covariance)."""
    if scenario.dtype == "float64":
        return 1e-10
    return 1e-4 if scenario.pixel_scale != 1.0 else 1e-5


def rank_rows(world: int, rank: int, split: str) -> list[int]:
    if split == "even":
        per = BATCH // world
        return list(range(rank * per, (rank + 1) * per))
    sizes = {1: [8], 2: [5, 3], 4: [3, 2, 2, 1]}[world]
    start = sum(sizes[:rank])
    return list(range(start, start + sizes[rank]))


def make_optimizer(name: str, params) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=LR, momentum=0.9)
    return torch.optim.Adam(params, lr=LR, eps=1e-2)  # eps near the gradient scale: the update depends on |g|


def local_losses(model: nn.Module, rows: list[int], scenario: Scenario, world: int):
    """Yield (loss, no_sync?) per micro-batch; each loss is a share of the global mean so that summing over
    micro-batches and averaging over ranks (as DDP does) gives the whole batch's mean loss."""
    x, y = global_batch(scenario.torch_dtype, scenario.pixel_scale)
    x = x.clone()
    parts = [part.tolist() for part in torch.tensor(rows).chunk(scenario.micro_batches)]
    for index, part in enumerate(parts):
        batch_x = x[part]
        if scenario.poison_rank is not None and index == 0:
            batch_x[0, 0, 0, 0] = float("nan")
        loss = F.cross_entropy(model(batch_x), y[part], reduction="sum") * world / BATCH
        yield loss, index < len(parts) - 1


def train_step(model: nn.Module, wrapped: nn.Module, scenario: Scenario, world: int, rank: int) -> dict:
    """One optimizer step of ``wrapped`` (the model itself, DDP or FSDP2) on this rank's rows."""
    optimizer = make_optimizer(scenario.optimizer, wrapped.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0) if scenario.poison_rank is not None else None
    before = full(model[0].weight).detach().clone()
    poisoned = scenario.poison_rank == rank
    for loss, defer_sync in local_losses(wrapped, rank_rows(world, rank, scenario.split), scenario, world):
        if not poisoned:
            loss = loss.nan_to_num()  # only the poisoned rank's loss may be NaN
        no_sync = getattr(wrapped, "no_sync", None)
        deferred = defer_sync and scenario.no_sync and no_sync is not None
        context = no_sync() if deferred else contextlib.nullcontext()
        with context:
            (scaler.scale(loss) if scaler else loss).backward()
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return {"before": before, "after": full(model[0].weight).detach().clone()}


def full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def run_single_process(scenario: Scenario) -> torch.Tensor:
    """The first layer's update of one optimizer step on one process (micro-batches accumulated)."""
    model = make_model(scenario)
    tract_hub.patch(model, LAM, target="0", exact=scenario.mode == "exact")
    result = train_step(model, model, scenario, world=1, rank=0)
    return result["after"] - result["before"]


def reference_update(scenario: Scenario) -> torch.Tensor:
    """Float64, whole batch, TrAct by the formula, then one step of the same optimizer."""
    model = make_model(Scenario(layer=scenario.layer, dtype="float64"))
    x, y = global_batch(torch.float64, scenario.pixel_scale)
    first = model[0]
    used = first.weight
    if scenario.layer == "stdconv":
        used = F.batch_norm(
            first.weight.reshape(1, 5, -1), None, None, training=True, momentum=0.0, eps=first.eps
        ).reshape_as(first.weight)
    out = F.conv2d(x, used, first.bias, padding=1)
    loss = F.cross_entropy(model[1:](out), y)
    (grad_used,) = torch.autograd.grad(loss, used, retain_graph=True)
    transformed = tract_reference(grad_used, conv_rows(x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1), LAM)
    grad = transformed if used is first.weight else torch.autograd.grad(used, first.weight, transformed)[0]
    weight = first.weight.detach().clone().requires_grad_(True)
    optimizer = make_optimizer(scenario.optimizer, [weight])
    weight.grad = grad
    before = weight.detach().clone()
    optimizer.step()
    return weight.detach() - before

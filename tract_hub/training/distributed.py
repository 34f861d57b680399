"""One process or ``torchrun``: the process group, the device of each rank, and reductions of metrics.

Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1 in the environment) each process joins the group with
NCCL when CUDA is available (one GPU per process, ``cuda:LOCAL_RANK``) and with gloo on CPU otherwise.

Example:
    >>> context = setup_distributed("cpu")
    >>> context.world_size, context.is_main
    (1, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import InvalidArgumentError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError("device='cuda' but no CUDA device is available; use --device cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if requested == "cpu":
        return torch.device("cpu")
    raise InvalidArgumentError(f"device={requested!r} is not one of 'auto', 'cuda', 'cpu'")


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the ``torchrun`` process group when there is one; pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = _device(device, local_rank)
    if world_size <= 1:
        return DistContext(0, 1, 0, target)
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, target)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    dist.init_process_group("nccl" if target.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistContext(rank, world_size, local_rank, target, initialized_here=True)


def teardown_distributed(context: DistContext) -> None:
    if context.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], context: DistContext) -> list[float]:
    """Element-wise sums of ``values`` over all ranks (float64)."""
    if not context.distributed:
        return list(values)
    device = context.device if context.device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_objects(value: Any, context: DistContext) -> list[Any]:
    """Every rank's ``value``, in rank order (on every rank)."""
    if not context.distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(context: DistContext) -> None:
    if context.distributed:
        dist.barrier()

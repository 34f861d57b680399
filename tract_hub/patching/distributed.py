"""How a patched layer's gradient is shared between ranks, so that its covariance is summed the same way.

Exact TrAct needs the covariance summed over exactly the ranks (and micro-batches) whose gradients end up summed
in the layer's ``.grad``. That is read in the layer's forward from what wraps the model:

* ``DistributedDataParallel``: its forward marks itself active; inside ``no_sync()`` gradients stay local, outside
  they are averaged over DDP's process group in the coming backward;
* FSDP2 (``fully_shard``): gradients are reduce-scattered over the mesh unless gradient sync is turned off, and they
  accumulate in the *sharded* parameter, which is where a cleared gradient is seen;
* neither, with ``process_group=`` given to :func:`tract_hub.patch`: the user averages gradients over that group
  after every backward;
* neither: local.

The covariance is summed over the ranks in the *forward* of a synchronizing micro-batch: every rank runs the first
layer's forward, while its backward may not reach the layer on some rank (``find_unused_parameters=True``, a loss
that ignores a branch), so a collective in the backward could pair with an unrelated one on another rank.

Example:
    >>> import torch
    >>> reduction_for(torch.nn.Linear(2, 2), process_group=None).groups
    ()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .. import _torch_internals as internals


def accumulated_gradient(module: nn.Module) -> torch.Tensor | None:
    """The tensor in which ``module.weight``'s gradient is accumulating, ``None`` when it was cleared.

    Plain and DDP: ``weight.grad``. FSDP2: the sharded parameter's ``.grad``, or, between backwards that do not
    reduce (gradient sync off), the unsharded gradient that FSDP2 keeps.
    """
    if not distributed():
        return module.weight.grad
    fsdp_param, _ = internals.fsdp_param_of(module)
    if fsdp_param is None:
        return module.weight.grad
    for grad in internals.fsdp_accumulated_grads(fsdp_param):
        if grad is not None:
            return grad.to_local() if hasattr(grad, "to_local") else grad
    return None


@dataclass(frozen=True)
class Reduction:
    """How one forward's covariance is summed over ranks: over ``groups`` one after the other (HSDP has two mesh
    dimensions), none for a local backward. ``source`` says who decided: ``"ddp"``, ``"fsdp2"``,
    ``"process_group"`` (given to :func:`tract_hub.patch`), or ``"none"`` (nothing wraps the model)."""

    groups: tuple[Any, ...]
    source: str

    def all_reduce(self, buffer: torch.Tensor) -> None:
        for group in self.groups:
            dist.all_reduce(buffer, group=group)

    @property
    def unknown_under_distributed(self) -> bool:
        """Several processes run, yet nothing says how this layer's gradient is shared between them."""
        return self.source == "none" and world_size() > 1


LOCAL = Reduction((), "none")


def reduction_for(module: nn.Module, *, process_group: Any) -> Reduction:
    """How the coming backward's covariance must be summed over ranks (called in the layer's forward).

    Args:
        module: the patched layer.
        process_group: the group given to :func:`tract_hub.patch` (``None``: the wrapper's, or the world).
    """
    if not distributed():
        return LOCAL
    ddp = internals.active_ddp()
    if ddp is not None:
        sync = bool(ddp.require_backward_grad_sync)
        return Reduction((process_group or ddp.process_group,) if sync else (), "ddp")
    fsdp_param, group = internals.fsdp_param_of(module)
    if fsdp_param is not None:
        reduces = internals.fsdp_reduces(group)
        return Reduction(internals.fsdp_process_groups(fsdp_param) if reduces else (), "fsdp2")
    if process_group is not None:
        return Reduction((process_group,), "process_group")
    return LOCAL


def distributed() -> bool:
    """``torch.distributed`` is initialized in this process."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if distributed() else 1

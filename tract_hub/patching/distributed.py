"""How a patched layer's gradient is shared between ranks, so that its covariance is summed the same way.

Exact TrAct needs the covariance summed over exactly the ranks (and micro-batches) whose gradients end up summed
in the layer's ``.grad``. That is decided per backward from what wraps the model:

* ``DistributedDataParallel``: its forward marks itself active; inside ``no_sync()`` gradients stay local, on the
  synchronizing backward they are averaged over DDP's process group;
* FSDP2 (``fully_shard``): gradients are reduce-scattered over the mesh unless gradient sync is turned off, and they
  accumulate in the *sharded* parameter, which is where a cleared gradient is seen;
* neither, with ``process_group=`` given to :func:`tract_hub.patch`: the user averages gradients over that group
  after every backward;
* neither: local.

Example:
    >>> import torch
    >>> reduction_for(torch.nn.Linear(2, 2), ddp=None, process_group=None).groups
    ()
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DDPForward:
    """What a ``DistributedDataParallel`` forward said: whether its backward averages the gradients (``False``
    within ``no_sync()``), and over which group."""

    sync: bool
    process_group: Any


def ddp_forward() -> DDPForward | None:
    """The active ``DistributedDataParallel`` forward's settings, or ``None`` outside one."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel._get_active_ddp_module()
    if ddp is None:
        return None
    return DDPForward(bool(ddp.require_backward_grad_sync), getattr(ddp, "process_group", None))


def _fsdp_param_groups() -> list[Any]:
    """Every live FSDP2 parameter group (PyTorch's registry of composable states; empty without FSDP2)."""
    try:
        from torch.distributed._composable_state import _module_state_mapping
    except ImportError:
        return []
    groups = []
    for entry in list(_module_state_mapping.values()):
        state = entry() if isinstance(entry, weakref.ref) else entry
        found = getattr(state, "_fsdp_param_groups", None)
        if found is None:
            single = getattr(state, "_fsdp_param_group", None)
            found = [single] if single is not None else []
        groups += found
    return groups


def _fsdp_param(module: nn.Module) -> tuple[Any, Any] | tuple[None, None]:
    """(FSDP2 parameter record, its parameter group) of ``module.weight`` when ``fully_shard`` manages it."""
    for group in _fsdp_param_groups():
        for fsdp_param in group.fsdp_params:
            info = fsdp_param._module_info
            if info.module is module and info.param_name == "weight":
                return fsdp_param, group
    return None, None


def accumulated_gradient(module: nn.Module) -> torch.Tensor | None:
    """The tensor in which ``module.weight``'s gradient is accumulating, ``None`` when it was cleared.

    Plain and DDP: ``weight.grad``. FSDP2: the sharded parameter's ``.grad``, or, between backwards that do not
    reduce (gradient sync off), the unsharded gradient that FSDP2 keeps.
    """
    fsdp_param, _ = _fsdp_param(module)
    if fsdp_param is None:
        return module.weight.grad
    for grad in (
        fsdp_param.sharded_param.grad,
        getattr(fsdp_param, "unsharded_accumulated_grad", None),
        getattr(getattr(fsdp_param, "_unsharded_param", None), "grad", None),
    ):
        if grad is not None:
            return grad.to_local() if hasattr(grad, "to_local") else grad
    return None


@dataclass(frozen=True)
class Reduction:
    """How one backward's covariance is summed over ranks: over ``groups`` one after the other (HSDP has two mesh
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


def _fsdp_reduction(fsdp_param: Any, group: Any) -> Reduction:
    if not group.reduce_grads:
        return Reduction((), "fsdp2")
    mesh = fsdp_param.mesh_info.mesh
    return Reduction(tuple(mesh.get_group(dim) for dim in range(mesh.ndim)), "fsdp2")


def reduction_for(module: nn.Module, *, ddp: DDPForward | None, process_group: Any) -> Reduction:
    """How this backward's covariance must be summed over ranks.

    Args:
        module: the patched layer.
        ddp: what :func:`ddp_forward` said during the layer's forward.
        process_group: the group given to :func:`tract_hub.patch` (``None``: the wrapper's, or the world).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return LOCAL
    if ddp is not None:
        return Reduction((process_group or ddp.process_group,) if ddp.sync else (), "ddp")
    fsdp_param, group = _fsdp_param(module)
    if fsdp_param is not None:
        return _fsdp_reduction(fsdp_param, group)
    if process_group is not None:
        return Reduction((process_group,), "process_group")
    return LOCAL


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

"""Exact mode: one TrAct solve per optimizer step, summed over micro-batches and data-parallel ranks.

The ordinary weight gradient ``G`` is linear in the samples, and gradient accumulation and DDP's all-reduce
already sum (average) it. The covariance ``x^T x`` and the row count ``N`` are linear too; :func:`finalize`
sums them over ranks with one all-reduce of a flat buffer (``n x n + 1`` numbers per layer) and then solves,
so the update for one global batch is the same however it was split.

Order in a training step::

    for micro_batch in step:                  # K micro-batches, on each of R ranks
        scaler.scale(loss(micro_batch)).backward()
    tract_hub.finalize(model)                 # TrAct on the summed gradient
    scaler.unscale_(optimizer)                # unscaling and clipping see the TrAct gradient
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer); scaler.update(); optimizer.zero_grad()
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..engine import solve_with_covariance
from ..errors import TrActStateError
from .layer import PENDING_LAYERS, PendingStep, TrActForward, capture_used_weight

logger = logging.getLogger(__name__)

#: Bytes of the one-number all-reduce by which the ranks agree on the buffer's dtype.
DTYPE_AGREEMENT_BYTES = 4


def _world(process_group: object | None) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(process_group)


def _layout(step: PendingStep | None, layer: TrActForward) -> tuple[int, int, int]:
    """(cov numbers, 1 for the row count, used-weight-gradient numbers) of one layer in the flat buffer."""
    if step is None:
        return 0, 0, 0
    extra = step.used_weight_grad.numel() if step.used_weight_grad is not None else 0
    return step.cov.numel(), 1, extra


def all_reduce_pending(layers: list[TrActForward], process_group: object | None = None) -> int:
    """Sum every layer's pending covariance and row count (and average the used-weight gradients, as DDP
    averages ``.grad``) across the ranks of ``process_group`` in one all-reduce (after a one-number all-reduce
    that agrees on its dtype). Returns the bytes all-reduced by this rank."""
    world = _world(process_group)
    steps = [layer.pending for layer in layers]
    if world == 1 or all(step is None for step in steps):
        return 0
    if any(step is None for step in steps):
        raise TrActStateError(
            "exact mode: some patched layers saw no backward on this rank; every rank must run "
            "the same layers before tract_hub.finalize"
        )
    dtype = _agreed_dtype(steps, process_group)
    parts: list[torch.Tensor] = []
    for step in steps:
        parts += [step.cov.flatten().to(dtype), step.cov.new_tensor([step.rows], dtype=dtype)]
        if step.used_weight_grad is not None:
            parts.append(step.used_weight_grad.flatten().to(dtype))
    buffer = torch.cat(parts)
    dist.all_reduce(buffer, group=process_group)
    offset = 0
    for step in steps:
        size = step.cov.numel()
        step.cov = buffer[offset : offset + size].view_as(step.cov)
        step.rows = float(buffer[offset + size])
        offset += size + 1
        if step.used_weight_grad is not None:
            size = step.used_weight_grad.numel()
            step.used_weight_grad = buffer[offset : offset + size].view_as(step.used_weight_grad) / world
            offset += size
    return buffer.numel() * buffer.element_size() + DTYPE_AGREEMENT_BYTES


def _agreed_dtype(steps: list[PendingStep], process_group: object | None) -> torch.dtype:
    """float32, unless a rank summed some covariance in float64 (ill-conditioned inputs or a float64 model):
    then float64 on every rank. One all-reduce of one number, so that all ranks send the same buffer."""
    local = any(step.cov.dtype == torch.float64 for step in steps)
    flag = torch.tensor([1.0 if local else 0.0], dtype=torch.float32, device=steps[0].cov.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=process_group)
    return torch.float64 if bool(flag.item()) else torch.float32


def _apply(layer: TrActForward, step: PendingStep) -> None:
    module = layer.module
    weight = module.weight
    if step.rows == 0:
        return
    if step.used_weight_grad is None:
        if weight.grad is None:
            return
        _solve_into_grad(weight, step, layer.lam)
        return
    used_grad = solve_with_covariance(step.used_weight_grad, step.cov, step.rows, layer.lam)
    used_weight = capture_used_weight(module)
    params = [p for p in module.parameters(recurse=False) if p.requires_grad and p is not getattr(module, "bias", None)]
    grads = torch.autograd.grad(used_weight, params, grad_outputs=used_grad.to(used_weight.dtype), allow_unused=True)
    for param, grad in zip(params, grads, strict=True):
        if grad is None:
            continue
        if param.grad is None:
            param.grad = grad.to(param.dtype)
        else:
            param.grad.add_(grad.to(param.grad.dtype))


def _solve_into_grad(weight: nn.Parameter, step: PendingStep, lam: float) -> None:
    """TrAct on ``weight.grad`` in place; a DTensor gradient sharded along output channels is solved shard-wise."""
    grad = weight.grad
    local = grad.to_local() if hasattr(grad, "to_local") else grad
    if local.numel() == 0:
        return
    if local.shape[0] != weight.shape[0] and step.geometry.groups != 1:
        raise RuntimeError("exact mode: a grouped first layer sharded along output channels is not supported")
    local.copy_(solve_with_covariance(local, step.cov, step.rows, lam))


def finalize(layers: Iterable[TrActForward], process_group: object | None = None) -> int:
    """Apply TrAct once to everything the exact-mode ``layers`` accumulated; returns the all-reduced bytes."""
    exact_layers = [layer for layer in layers if layer.exact]
    sent = all_reduce_pending(exact_layers, process_group)
    for layer in exact_layers:
        step, layer.pending = layer.pending, None
        PENDING_LAYERS.discard(layer)
        if step is not None:
            _apply(layer, step)
    return sent


# -- the optimizer step guard ---------------------------------------------------------------------------------
_BOUND: weakref.WeakKeyDictionary[Any, tuple[nn.Module, Any]] = weakref.WeakKeyDictionary()
_GUARD_INSTALLED = False


def bind_optimizer(model: nn.Module, optimizer: Any, process_group: Any = None) -> None:
    """Finalize ``model``'s exact-mode layers at the start of every ``optimizer.step()``."""
    _BOUND[optimizer] = (model, process_group)
    install_step_guard()


def install_step_guard() -> None:
    """Check every optimizer step (once per process): a bound optimizer finalizes its model first; an unbound
    one that would step a weight whose TrAct step is still pending raises :class:`TrActStateError` (TrAct would
    otherwise be skipped without a word)."""
    global _GUARD_INSTALLED
    if not _GUARD_INSTALLED:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        register_optimizer_step_pre_hook(_step_guard)
        _GUARD_INSTALLED = True


def _step_guard(optimizer: Any, args: Any, kwargs: Any) -> None:
    bound = _BOUND.get(optimizer)
    if bound is not None:
        from .api import finalize as finalize_model

        finalize_model(*bound)
        return
    if not PENDING_LAYERS:
        return
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    pending = [layer for layer in list(PENDING_LAYERS) if id(getattr(layer.module, "weight", None)) in held]
    if pending:
        raise TrActStateError(
            f"TrAct exact mode: optimizer.step() on {type(pending[0].module).__name__}'s weight while its TrAct "
            "step was never finalized, so TrAct would be skipped. Call tract_hub.finalize(model) after the last "
            "backward of each step, before gradient clipping, GradScaler.unscale_ and optimizer.step(); or pass "
            "optimizer= to tract_hub.patch so that the step finalizes first (correct when nothing clips gradients)."
        )

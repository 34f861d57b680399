"""Outputs of common operations on meta tensors, made without running them.

On the meta device many operations run Python decompositions to find their output's shape (normalizations,
activations, ``clamp``, elementwise arithmetic, ``linear``): they are most of a meta trace's time. For the
functions listed here the output is made directly, after the checks the real function would make (a wrong
input shape must still fail, so that the trace can reject a wrong guess of the input).

Example:
    >>> import torch
    >>> x = torch.empty(2, 8, 5, device="meta")
    >>> meta_result(torch.nn.functional.linear, (x, torch.empty(3, 5, device="meta")), {}).shape
    torch.Size([2, 8, 3])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

#: Functions whose output has the shape and dtype of their first argument. On the meta device their output is
#: made directly: their meta implementations are Python decompositions, the bulk of a meta trace's time.
#: (The normalizations are checked against their parameters first, as the real functions would.)
SHAPE_PRESERVING: frozenset[Any] = frozenset(
    {
        F.batch_norm,
        F.layer_norm,
        F.group_norm,
        F.rms_norm,
        torch.clamp,
        torch.clip,
        torch.Tensor.clamp,
        torch.Tensor.clip,
        F.gelu,
        F.silu,
        F.mish,
        F.hardswish,
        F.hardsigmoid,
        F.elu,
        F.leaky_relu,
        F.hardtanh,
        F.relu6,
    }
)
_NORMALIZATIONS = frozenset({F.batch_norm, F.layer_norm, F.group_norm, F.rms_norm})

#: Elementwise functions of two operands whose output dtype is ``torch.result_type`` of the operands.
BROADCASTING: frozenset[Any] = frozenset(
    {
        torch.add,
        torch.sub,
        torch.mul,
        torch.Tensor.add,
        torch.Tensor.sub,
        torch.Tensor.mul,
        torch.Tensor.__add__,
        torch.Tensor.__radd__,
        torch.Tensor.__sub__,
        torch.Tensor.__rsub__,
        torch.Tensor.__mul__,
        torch.Tensor.__rmul__,
    }
)


def _fits(func: Any, x: torch.Tensor, args: tuple, kwargs: dict) -> bool:
    """The shape checks the real normalization functions make; linear's feature count."""
    if func is F.linear:
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        return (
            isinstance(weight, torch.Tensor) and weight.dim() == 2 and x.dim() >= 1 and x.shape[-1] == weight.shape[1]
        )
    if func is F.batch_norm:
        sizes = [t.numel() for t in (*args[1:5], *kwargs.values()) if isinstance(t, torch.Tensor)]
        return x.dim() >= 2 and all(size == x.shape[1] for size in sizes)
    if func in (F.layer_norm, F.rms_norm):
        shape = tuple(args[1] if len(args) > 1 else kwargs.get("normalized_shape", ()))
        return len(shape) <= x.dim() and tuple(x.shape[x.dim() - len(shape) :]) == shape
    if func is F.group_norm:
        groups = args[1] if len(args) > 1 else kwargs.get("num_groups", 0)
        return x.dim() >= 2 and isinstance(groups, int) and groups > 0 and x.shape[1] % groups == 0
    return True


def meta_result(func: Any, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The output of ``func`` on meta tensors, made without running it; ``None`` when it is not one of the above."""
    if "out" in kwargs or not args or not isinstance(args[0], torch.Tensor):
        return None
    x = args[0]
    if kwargs.get("inplace") or any(arg is True for arg in args[1:]):  # activations' positional ``inplace``
        return x if func in SHAPE_PRESERVING and func not in _NORMALIZATIONS else None
    if func in SHAPE_PRESERVING or func is F.linear:
        if not _fits(func, x, args, kwargs):
            return None  # the real function raises the error
        if func is F.linear:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            return torch.empty((*x.shape[:-1], weight.shape[0]), dtype=x.dtype, device=x.device)
        return torch.empty_like(x)
    if func in BROADCASTING and len(args) == 2 and set(kwargs) <= {"alpha"}:
        first, second = args
        if isinstance(second, torch.Tensor):
            if second.device != first.device:
                return None
            shape = torch.broadcast_shapes(first.shape, second.shape)
        elif isinstance(second, (int, float, bool)):
            shape = first.shape
        else:
            return None
        return torch.empty(shape, dtype=torch.result_type(first, second), device=first.device)
    return None

"""TrAct under ``torch.func`` transforms (``grad``, ``vmap(grad(...))`` for per-sample gradients, ``jacrev``).

A transform computes gradients of a function instead of accumulating into ``.grad``, so the layer gets the
per-call TrAct gradient: ``G @ inverse(x^T x / N + lam I)`` over the rows of that call (under ``vmap``, of each
sample). The custom operators of :mod:`~tract_hub.patching.ops` cannot run under functorch, so these calls go
through :class:`FunctionalRoute`, an ``autograd.Function`` whose backward is written in batchable operations
(the rows are unfolded whole: a transform's calls are small, and ``vmap`` needs plain tensor code).

Example:
    >>> import torch, tract_hub
    >>> from torch.func import functional_call, grad
    >>> model = tract_hub.patch(torch.nn.Sequential(torch.nn.Linear(3, 2)), target="0")
    >>> params = {name: p.detach() for name, p in model.named_parameters()}
    >>> loss = lambda p, x: functional_call(model, p, (x,)).square().sum()
    >>> grad(loss)(params, torch.randn(5, 3))["0.weight"].shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..engine.geometry import LayerGeometry


def unfolded_rows(x: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """The input rows of one call as ``(N, groups, n)``, features in the weight's order ``(c, *kernel)``."""
    if geometry.kind == "linear":
        return x.reshape(-1, 1, geometry.features)
    pads = geometry.pad_widths
    x = F.pad(x, pads) if any(pads) else x
    dims = len(geometry.kernel)
    for dim, (k, s, d) in enumerate(zip(geometry.kernel, geometry.stride, geometry.dilation, strict=True)):
        x = x.unfold(2 + dim, d * (k - 1) + 1, s)
    if any(d > 1 for d in geometry.dilation):
        x = x[(Ellipsis, *(slice(None, None, d) for d in geometry.dilation))]
    batch, channels = x.shape[:2]
    out = x.shape[2 : 2 + dims]
    x = x.movedim(1, 1 + dims)  # (B, *out, C, *kernel)
    return x.reshape(
        batch * math.prod(out), geometry.groups, (channels // geometry.groups) * math.prod(x.shape[-dims:])
    )


def per_call_gradient(
    grad: torch.Tensor, x: torch.Tensor, row_mask: torch.Tensor | None, geometry: LayerGeometry, lam: float
) -> torch.Tensor:
    """``G @ inverse(x^T x / N + lam I)`` of one call, per group, in batchable float64 operations."""
    rows = unfolded_rows(x, geometry).to(torch.float64)
    count: Any = rows.shape[0]
    if row_mask is not None:
        keep = row_mask.reshape(-1, 1, 1).to(rows.dtype)
        rows, count = rows * keep, keep.sum()
    cov = torch.einsum("rgi,rgj->gij", rows, rows)
    eye = torch.eye(geometry.features, dtype=torch.float64, device=x.device)
    matrix = cov / max(count, 1) if isinstance(count, int) else cov / count.clamp_min(1)
    by_group = grad.reshape(geometry.groups, grad.shape[0] // geometry.groups, -1).to(torch.float64)
    solved = torch.linalg.solve(matrix + lam * eye, by_group.transpose(1, 2)).transpose(1, 2)
    return solved.reshape(grad.shape).to(grad.dtype)


class FunctionalRoute(torch.autograd.Function):
    """Identity on the weight a layer's call uses; its backward returns the per-call TrAct gradient."""

    generate_vmap_rule = True

    @staticmethod
    def forward(weight: torch.Tensor, x: torch.Tensor, row_mask: Any, geometry: LayerGeometry, lam: float) -> Any:
        return weight.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        _, x, row_mask, geometry, lam = inputs
        ctx.save_for_backward(x, row_mask)
        ctx.geometry, ctx.lam = geometry, lam

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, row_mask = ctx.saved_tensors
        return per_call_gradient(grad, x.detach(), row_mask, ctx.geometry, ctx.lam), None, None, None, None

    @staticmethod
    def jvp(ctx: Any, weight_tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        return weight_tangent


def functional_route(
    weight: torch.Tensor, x: torch.Tensor, row_mask: torch.Tensor | None, geometry: LayerGeometry, lam: float
) -> torch.Tensor:
    """The weight for a layer call made under a ``torch.func`` transform (see the module docstring)."""
    return FunctionalRoute.apply(weight, x, row_mask, geometry, lam)

"""A float64 TrAct reference written directly from the formula, independent of tract_hub's engine.

``G_tract = G @ inverse(x^T x / N + lam * I)``, per group, where ``x`` are the layer input's rows: the last
dimension for Linear, the patches for a convolution (extracted here by slicing the zero-padded input once per
kernel offset, not by the engine's strided view).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F


def linear_rows(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.float64).reshape(-1, x.shape[-1])


def conv_rows(
    x: torch.Tensor,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
    groups: int,
) -> torch.Tensor:
    """Patches of ``x`` as ``(groups, N, C/groups * prod(kernel))`` rows, ordered (channel, *kernel offset)."""
    x = x.detach().to(torch.float64)
    pads = [p for pair in reversed(padding) for p in pair]
    x = F.pad(x, pads)
    batch, channels = x.shape[:2]
    spatial = x.shape[2:]
    out = [(s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(spatial, kernel, stride, dilation)]
    columns = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(o * d, o * d + (n - 1) * st + 1, st) for o, d, n, st in zip(offset, dilation, out, stride))
        columns.append(x[(slice(None), slice(None), *index)])  # (B, C, *out)
    patches = torch.stack(columns, dim=2)  # (B, C, K, *out)
    patches = patches.flatten(3).permute(0, 3, 1, 2)  # (B, L, C, K)
    patches = patches.reshape(batch * patches.shape[1], groups, channels // groups * len(columns))
    return patches.transpose(0, 1)


def tract_reference(grad: torch.Tensor, rows: torch.Tensor, lam: float) -> torch.Tensor:
    """``grad`` (weight-shaped) transformed with rows ``(groups, N, n)`` (or ``(N, n)``), in float64."""
    if rows.dim() == 2:
        rows = rows[None]
    groups, count, features = rows.shape
    grad64 = grad.detach().to(torch.float64).reshape(groups, grad.shape[0] // groups, features)
    eye = torch.eye(features, dtype=torch.float64)
    out = [grad64[g] @ torch.linalg.inv(rows[g].T @ rows[g] / count + lam * eye) for g in range(groups)]
    return torch.stack(out).reshape(grad.shape)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().to(torch.float64), expected.detach().to(torch.float64)
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-300))

"""Which dtype the covariance is summed in, and arithmetic that global settings cannot lower.

The covariance ``x^T x`` is the engine's largest computation (``N x n x n``). It is summed in float64 where float64
matrix products run at (nearly) the float32 rate: on CPUs and on NVIDIA's data-center GPUs (P100, V100, A100, H100,
H200, B200). Elsewhere (consumer and workstation GPUs, where float64 runs at 1/32 to 1/64 of the float32 rate, and
devices without float64) it is summed in float32. The choice depends only on the device, never on the data, so no
host-device sync is needed to make it and a run is reproducible on a given machine.

Summed in float32, the covariance of inputs far from unit scale (e.g. pixels in [0, 255]) carries a rounding error
that the ill-conditioned solve amplifies (measured: up to ~1e-3 relative on smooth [0, 255] images, the size of the
error PyTorch's own float32 weight gradient has there); normalized inputs stay within ~1e-5.

Example:
    >>> import torch
    >>> covariance_dtype(torch.zeros(2, 3))
    torch.float64
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

#: CUDA compute capabilities whose float64 matrix products run at the float32 rate or better (P100, V100, A100/A30,
#: H100/H200, B200/GB200).
FAST_FLOAT64_CAPABILITIES = frozenset({(6, 0), (7, 0), (8, 0), (9, 0), (10, 0)})


@functools.cache
def _fast_float64(device_type: str, index: int | None) -> bool:
    if device_type == "cpu":
        return True
    if device_type == "cuda":
        return torch.cuda.get_device_capability(index) in FAST_FLOAT64_CAPABILITIES
    return False


def covariance_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for float64 inputs and on devices with fast float64, float32 otherwise (see the module docstring)."""
    if x.dtype == torch.float64:
        return torch.float64
    device = x.device
    if device.type == "meta":
        return torch.float64
    return torch.float64 if _fast_float64(device.type, device.index) else torch.float32


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """No autocast and no TF32 for the computations inside: a backward run inside ``torch.autocast``, or
    ``torch.set_float32_matmul_precision("high")``, would otherwise sum the covariance in bfloat16 / TF32."""
    autocast = torch.autocast(device.type, enabled=False) if device.type in ("cpu", "cuda") else None
    tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        if tf32 and device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
        with autocast if autocast is not None else contextlib.nullcontext():
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32

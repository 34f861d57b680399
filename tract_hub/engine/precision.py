"""How the covariance is summed: float64, or float32 where that is cheaper and accurate enough; and arithmetic
that global settings cannot lower.

The covariance ``x^T x`` is the engine's largest computation (``N x n x n``). It is summed one of two ways:

* **float64**: rows copied to float64, products and sums in float64.
* **float32, shifted**: the rows less a per-channel offset ``c`` (the call's channel means, computed on the device)
  are multiplied in float32; each float32 partial sum covers at most ``partial_rows`` rows before it is added into a
  float64 total; ``x^T x = S + c s^T + s c^T - N c c^T`` is then recovered in float64 from the float64 row sum
  ``s``. The float32 rounding is thus that of the rows' spread (not their offset: pixels in [0, 1] or [0, 255] lose
  nothing to their mean), and shrinks with ``partial_rows / N``.

Which one: the cheapest whose error stays below the error PyTorch's own float32 ``G`` already carries
(DESIGN.md decision 12), with no host-device sync on accelerators (decision 10):

* float64 inputs, and CUDA GPUs whose float64 matrix products run at the float32 rate (P100, V100, A100, H100,
  H200, B200): float64, which costs no more there.
* other accelerators (consumer GPUs: float64 at 1/32 to 1/64 of the rate) and the meta device: float32, a choice
  by device only, never by data.
* CPUs (float64 products cost about twice float32's; reading a value on the host is free): float32 when
  :func:`float32_partial_rows` finds a partial-sum length of at least :data:`MIN_PARTIAL_ROWS` rows whose predicted
  error stays under that floor, float64 otherwise (e.g. raw [0, 255] pixels, and patch embeddings like ViT-S/16's,
  where ``N`` is small next to ``n`` and ``G`` itself is accurate).

The prediction: the float32 summation's added error, relative to that floor, is at most about
``C (K / N) sqrt(n) v / sqrt(m lam)`` for float32 partial sums of ``K`` of the ``N`` rows of ``n`` features whose
channels have mean variance ``v`` and mean square ``m``: ``K / N`` is how much of the float32 rounding the float64
total averages away against ``G``'s own (a sum over all ``N`` rows), ``sqrt(n) sqrt(m / lam)`` bounds how much more
the solve amplifies an error in the covariance than one in ``G``, ``v / m`` is what the shift leaves of the rows'
magnitude. :data:`FLOAT32_ERROR_CONSTANT` makes it an upper bound on every case of
``benchmarks/precision_accuracy.py`` (photographs; 3x to 600x above the measured error, tightest on patch
embeddings), so the rule errs towards float64.

Example:
    >>> import torch
    >>> float32_partial_rows(mean_square=1.0, variance=1.0, features=27, rows=131072, lam=1e-3) >= MIN_PARTIAL_ROWS
    True
    >>> float32_partial_rows(mean_square=1.0, variance=1.0, features=768, rows=1568, lam=0.1)  # ViT-S/16, batch 8
    0
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..errors import InvalidArgumentError

#: CUDA compute capabilities whose float64 matrix products run at the float32 rate or better (P100, V100, A100/A30,
#: H100/H200, B200/GB200).
FAST_FLOAT64_CAPABILITIES = frozenset({(6, 0), (7, 0), (8, 0), (9, 0), (10, 0)})

#: ``C`` of the predicted float32 error (module docstring): at or above every measured case.
FLOAT32_ERROR_CONSTANT = 0.4

#: The regularization the CPU rule assumes when the caller does not say (the smallest one it was measured at).
RULE_LAM = 1e-3

#: Below this many rows per float32 partial sum, the float64 summation is used instead (shorter products run
#: slowly, and the float64 additions would cost as much as the products).
MIN_PARTIAL_ROWS = 256

_forced: torch.dtype | None = None


@dataclass(frozen=True)
class Summation:
    """How one call's covariance is summed: ``dtype`` of the products, and (float32) the most rows one float32
    partial sum covers before it is added into the float64 total (``None``: one partial sum per slice)."""

    dtype: torch.dtype
    partial_rows: int | None = None


@functools.cache
def _fast_float64(device_type: str, index: int | None) -> bool:
    if device_type == "cuda":
        return torch.cuda.get_device_capability(index) in FAST_FLOAT64_CAPABILITIES
    return False


def device_summation(x: torch.Tensor) -> torch.dtype | None:
    """The summation dtype where the device or the input's dtype decides it; ``None`` on a CPU, where the input's
    scale decides (:func:`float32_partial_rows`). A dtype forced with :func:`forced_summation` wins."""
    if _forced is not None:
        return _forced
    if x.dtype == torch.float64:
        return torch.float64
    device = x.device
    if device.type == "cpu":
        return None
    return torch.float64 if _fast_float64(device.type, device.index) else torch.float32


def covariance_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the device sums ``x``'s covariance in: :func:`device_summation`, or float64 on a CPU before the
    input's scale is known (the engine then refines it with :func:`float32_partial_rows`)."""
    return device_summation(x) or torch.float64


def float32_partial_rows(*, mean_square: float, variance: float, features: int, rows: int, lam: float) -> int:
    """The most rows a float32 partial sum may cover for the predicted error to stay under the float32-``G`` floor
    (module docstring), or 0 when fewer than :data:`MIN_PARTIAL_ROWS` (float64 is then needed).

    ``mean_square`` and ``variance`` are the per-channel mean square and variance of the input, averaged over the
    channels (the shift removes the channel means); non-finite statistics give 0.
    """
    if not (math.isfinite(mean_square) and math.isfinite(variance)) or rows <= 0:
        return 0
    if variance <= 0.0:
        return rows
    spread = variance / math.sqrt(mean_square * lam)
    allowed = rows / (FLOAT32_ERROR_CONSTANT * math.sqrt(features) * spread)
    return int(min(allowed, rows)) if allowed >= MIN_PARTIAL_ROWS else 0


@contextlib.contextmanager
def forced_summation(dtype: torch.dtype | None) -> Iterator[None]:
    """Sum every covariance in ``dtype`` while inside (process-wide; ``None`` restores the rule): how the tests
    and benchmarks run the data-center GPU path (float64) and the consumer GPU path (float32) on a CPU."""
    global _forced
    if dtype not in (None, torch.float32, torch.float64):
        raise InvalidArgumentError(f"forced_summation({dtype}) takes torch.float32, torch.float64 or None")
    previous, _forced = _forced, dtype
    try:
        yield
    finally:
        _forced = previous


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """No autocast and no TF32 for the computations inside: a backward run inside ``torch.autocast``, or
    ``torch.set_float32_matmul_precision("high")``, would otherwise sum the covariance in bfloat16 / TF32."""
    autocast_on = device.type in ("cpu", "cuda") and torch.is_autocast_enabled(device.type)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    if not autocast_on and not (tf32 and device.type == "cuda"):  # the common case: nothing to switch off
        yield
        return
    autocast = torch.autocast(device.type, enabled=False) if autocast_on else None
    try:
        if tf32 and device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
        with autocast if autocast is not None else contextlib.nullcontext():
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32

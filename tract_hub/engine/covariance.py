"""The uncentered covariance ``x^T x`` of a layer's input rows, without building all rows at once.

For a convolution the rows are the unfolded patches, produced a bounded slice at a time (:mod:`.slicing`), copied
into the summation dtype and multiplied into a running ``n x n`` sum per group; overlapping kernels share the
products of their input rows (:mod:`.row_window`). Peak extra memory is one slice (``max_chunk_bytes``) and the
sums. The dtype and, for float32, the shift and the length of the float32 partial sums follow
:mod:`.precision`; the result is float64 either way.

Example:
    >>> import torch
    >>> from tract_hub.engine.geometry import LayerGeometry
    >>> x = torch.randn(4, 10, 3)                      # (batch, tokens, features) for a Linear(3, m)
    >>> cov, rows = input_covariance(x, LayerGeometry.for_linear(torch.empty(5, 3)))
    >>> cov.shape, cov.dtype, rows
    (torch.Size([1, 3, 3]), torch.float64, 40)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from .geometry import LayerGeometry
from .precision import MIN_PARTIAL_ROWS, RULE_LAM, Summation, device_summation, float32_partial_rows
from .row_window import row_window_covariance, shares_rows
from .slicing import conv_slices, linear_slices, reads_channels_first
from .sums import PartialSums, add_gram, mirrored

#: Default bound on the bytes of one slice of unfolded rows, by device type. Small slices stay in the CPU's
#: caches (measured on a 2-core Xeon: 4 MiB is as fast as 32 MiB or faster, and keeps the peak memory of a
#: backward within 1.05x of vanilla on the benchmark layers); a GPU wants fewer, larger launches.
CHUNK_BYTES = {"cpu": 4 * 2**20}
DEFAULT_CHUNK_BYTES = 64 * 2**20

#: Rows per float32 partial sum on accelerators (no data-dependent choice there), and at most on CPUs (whose rule
#: may ask for fewer): long enough for full-speed products, short enough that the float64 total averages most of
#: the float32 rounding away and, on a CPU, that a slice stays in cache (measured on the CIFAR stem: partial sums of
#: 4,096 rows ran faster than the 19,943 the rule allowed).
ACCELERATOR_PARTIAL_ROWS = 4096


def chunk_bytes(device: torch.device) -> int:
    """The default bound on the memory of one slice of unfolded rows on ``device``."""
    return CHUNK_BYTES.get(device.type, DEFAULT_CHUNK_BYTES)


@dataclass(frozen=True)
class _Shift:
    """The per-channel offset ``c`` subtracted from the rows, with what restores ``x^T x`` from the shifted sum."""

    channels: torch.Tensor  # (C,) float32: subtracted from every row's channel values
    offset: torch.Tensor  # (groups, n) float64: ``c`` per feature, features in the weight's (channel, *kernel) order
    row_sum: torch.Tensor  # (groups, n) float64: the sum of the unshifted rows, same order

    def restore(self, shifted: torch.Tensor, rows: int) -> torch.Tensor:
        """``x^T x = S + c s^T + s c^T - N c c^T = S + c u^T + u c^T`` with ``u = s - N c / 2``, for ``S`` the
        covariance of the shifted rows (float64, updated in place by two rank-one products)."""
        offset, half = self.offset[:, :, None], (self.row_sum - rows / 2 * self.offset)[:, :, None]
        shifted.baddbmm_(offset, half.transpose(1, 2))
        return shifted.baddbmm_(half, offset.transpose(1, 2))


@dataclass(frozen=True)
class _Totals:
    """What one pass over the input gives: the sum over everything but the channels and spatial positions (the
    batch, for a convolution), and the channel means (float64, on the device)."""

    summed: torch.Tensor  # Linear: (n,) float64 over all rows; conv: (C, *S) float32 over the batch
    means: torch.Tensor  # (C,) float64

    @classmethod
    def of(cls, x: torch.Tensor, geometry: LayerGeometry) -> _Totals:
        if geometry.kind == "linear":
            dims = tuple(range(x.dim() - 1))
            summed = x.sum(dims, dtype=torch.float64) if dims else x.to(torch.float64)
            return cls(summed, summed / max(1, x.numel() // x.shape[-1]))
        summed = x.sum(0, dtype=torch.float32)  # float32 over a batch: 10x faster, and its rounding averages out
        spatial = tuple(range(1, summed.dim()))
        return cls(summed, summed.sum(spatial, dtype=torch.float64) / (x.shape[0] * math.prod(x.shape[2:])))


def _patch_sums(summed: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """The sum of all patches of a ``(C, *S)`` input, ``(groups, n)`` float64 in the weight's feature order.

    Separably, one spatial dimension at a time: the sum over the output positions of kernel offset ``i`` along a
    dimension is a strided sum along it, so the work is about the input's size, not the patches'.
    """
    pads = geometry.pad_widths
    sums = F.pad(summed.to(torch.float64), pads) if any(pads) else summed.to(torch.float64)
    for axis, (k, s, d) in enumerate(zip(geometry.kernel, geometry.stride, geometry.dilation, strict=True), 1):
        out = (sums.shape[axis] - d * (k - 1) - 1) // s + 1
        step = sums.stride(axis)
        shape = (*sums.shape[:axis], k, out, *sums.shape[axis + 1 :])
        strides = (*sums.stride()[:axis], d * step, s * step, *sums.stride()[axis + 1 :])
        sums = sums.as_strided(shape, strides, sums.storage_offset()).sum(axis + 1)
    return sums.reshape(geometry.groups, geometry.features)


def _shift_of(geometry: LayerGeometry, totals: _Totals) -> _Shift:
    """The channel means as ``c`` and the float64 row sums, per feature (all on the device)."""
    channels = totals.means.to(torch.float32)
    if geometry.kind == "linear":
        return _Shift(channels, channels.to(torch.float64)[None], totals.summed[None])
    volume = math.prod(geometry.kernel)
    offset = channels.to(torch.float64).view(geometry.groups, -1, 1).expand(-1, -1, volume)
    return _Shift(channels, offset.reshape(geometry.groups, geometry.features), _patch_sums(totals.summed, geometry))


def _moments(x: torch.Tensor, totals: _Totals) -> tuple[float, float]:
    """(mean square, variance) per channel, averaged over the channels; read on the host (CPU only)."""
    mean_square = float(torch.linalg.vector_norm(x, dtype=torch.float32)) ** 2 / max(1, x.numel())
    return mean_square, mean_square - float(totals.means.square().mean())


def summation_for(
    x: torch.Tensor, geometry: LayerGeometry, *, lam: float | None = None, dtype: torch.dtype | None = None
) -> Summation:
    """How ``x``'s covariance is summed (:mod:`.precision`): ``dtype`` when given (float32 or float64), else the
    device's choice, else (CPU) float32 when the predicted error allows partial sums of enough rows at ``lam``
    (default :data:`~.precision.RULE_LAM`), float64 otherwise."""
    return _summation(x, geometry, lam, dtype, None)


def _summation(
    x: torch.Tensor, geometry: LayerGeometry, lam: float | None, dtype: torch.dtype | None, totals: _Totals | None
) -> Summation:
    if dtype not in (None, torch.float32, torch.float64):
        raise InvalidArgumentError(f"dtype={dtype} is not a covariance summation; use torch.float32 or torch.float64")
    chosen = dtype or device_summation(x)
    if chosen == torch.float64:
        return Summation(torch.float64)
    if chosen == torch.float32:
        return Summation(torch.float32, ACCELERATOR_PARTIAL_ROWS)
    rows = geometry.rows(x)
    if rows == 0 or x.numel() == 0:
        return Summation(torch.float64)
    mean_square, variance = _moments(x, totals or _Totals.of(x, geometry))
    partial = float32_partial_rows(
        mean_square=mean_square,
        variance=max(variance, 0.0),
        features=geometry.features,
        rows=rows,
        lam=RULE_LAM if lam is None else lam,
    )
    return Summation(torch.float32, min(partial, ACCELERATOR_PARTIAL_ROWS)) if partial else Summation(torch.float64)


def _channel_major(cov: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """Reorder a ``(groups, n, n)`` covariance from features ``(*kernel, c)`` to the weight's ``(c, *kernel)``."""
    dims = len(geometry.kernel)
    group_channels = geometry.in_channels // geometry.groups
    shaped = cov.view(cov.shape[0], *geometry.kernel, group_channels, *geometry.kernel, group_channels)
    order = (0, dims + 1, *range(1, dims + 1), 2 * dims + 2, *range(dims + 2, 2 * dims + 2))
    return shaped.permute(order).reshape(cov.shape)


def _linear_covariance(
    x: torch.Tensor, features: int, summation: Summation, max_elements: int, shift: _Shift | None
) -> torch.Tensor:
    dtype = summation.dtype
    max_rows = max(1, max_elements // features)
    if summation.partial_rows:
        max_rows = min(max_rows, summation.partial_rows)
    sums = PartialSums((1, features, features), summation, x.device)
    buffer: torch.Tensor | None = None
    for rows in linear_slices(x, features, max_rows):
        sums.before(rows.shape[0])
        if shift is None and rows.dtype == dtype:
            block = rows
        else:
            if buffer is None or buffer.shape[0] < rows.shape[0]:
                buffer = torch.empty(rows.shape, dtype=dtype, device=x.device)
            block = buffer[: rows.shape[0]]
            if shift is None:
                block.copy_(rows)
            else:
                torch.sub(rows, shift.channels, out=block)
        add_gram(sums.partial, block[:, None])
    return mirrored(sums.result())


def _patch_covariance(
    x: torch.Tensor, geometry: LayerGeometry, summation: Summation, max_elements: int, shift: _Shift | None
) -> torch.Tensor:
    groups, features = geometry.groups, geometry.features
    if summation.partial_rows:
        max_elements = min(max_elements, summation.partial_rows * groups * features)
    sums = PartialSums((groups, features, features), summation, x.device)
    buffer: torch.Tensor | None = None
    channels_first = reads_channels_first(x, geometry)
    channels = None if shift is None else shift.channels
    for view in conv_slices(x, geometry, max_elements, channels, channels_first=channels_first):
        count = view.numel() // (groups * features)
        sums.before(count)
        if buffer is None or buffer.shape[0] < count:
            buffer = torch.empty((count, groups, features), dtype=summation.dtype, device=x.device)
        rows = buffer[:count]
        rows.view(view.shape).copy_(view)
        add_gram(sums.partial, rows)
    cov = mirrored(sums.result())
    return cov if channels_first else _channel_major(cov, geometry)


#: Below this many numbers in all rows together (rows x features), overlapping kernels' rows are gathered whole:
#: sharing input-row products saves multiplications but costs a fixed number of operations per call.
SHARED_ROWS_MIN_ELEMENTS = 2**16

#: Up to this many numbers in all rows together, a 2-d convolution's rows are unfolded at once with ``F.unfold``
#: and summed in float64 with one product (measured on a CPU for a 2x3x8x8 input: the whole covariance call in
#: 47 us instead of the sliced path's 97 us; the calls of small layers are dominated by such fixed costs).
UNFOLD_MAX_ELEMENTS = 2**16


def _unfolded_covariance(x: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """``x^T x`` per group of a small 2-d convolution input, float64, from all its patches at once."""
    x = x.to(torch.float64)
    padding = tuple(before for before, after in geometry.padding)
    if padding != tuple(after for before, after in geometry.padding):  # uneven ("same" with even kernels)
        x = F.pad(x, geometry.pad_widths)
        padding = (0, 0)
    patches = F.unfold(x, geometry.kernel, geometry.dilation, padding, geometry.stride)  # (B, C * kernel, L)
    groups, features = geometry.groups, geometry.features
    rows = patches.view(x.shape[0], groups, features, -1).permute(1, 0, 3, 2).reshape(groups, -1, features)
    return rows.mT @ rows


def input_covariance_with_summation(
    x: torch.Tensor,
    geometry: LayerGeometry,
    *,
    dtype: torch.dtype | None = None,
    lam: float | None = None,
    max_chunk_bytes: int | None = None,
) -> tuple[torch.Tensor, int, Summation]:
    """:func:`input_covariance`, and how it was summed: a float32-summed covariance carries float32 rounding
    (float64 dtype notwithstanding) and may miss positive definiteness by it, which the solve must allow for."""
    rows = geometry.rows(x)
    if rows == 0 or x.numel() == 0:
        groups, features = geometry.groups, geometry.features
        empty = torch.zeros(groups, features, features, dtype=torch.float64, device=x.device)
        return empty, rows, Summation(torch.float64)
    chosen = dtype or device_summation(x) or (torch.float64 if rows < MIN_PARTIAL_ROWS else None)
    totals = None if chosen == torch.float64 else _Totals.of(x, geometry)
    summation = _summation(x, geometry, lam, chosen, totals)
    element = summation.dtype.itemsize
    max_elements = max(1, (max_chunk_bytes or chunk_bytes(x.device)) // element)
    shift = _shift_of(geometry, totals) if totals is not None and summation.dtype == torch.float32 else None
    del totals  # what the shift needs of them it holds: free the input-sized sum before the rows are unfolded
    small = rows * geometry.groups * geometry.features <= UNFOLD_MAX_ELEMENTS
    if geometry.kind == "linear":
        cov = _linear_covariance(x, geometry.features, summation, max_elements, shift)
    elif small and geometry.spatial_dims == 2 and summation.dtype == torch.float64:
        cov = _unfolded_covariance(x, geometry)
    elif shares_rows(geometry) and rows * geometry.features >= SHARED_ROWS_MIN_ELEMENTS:
        channels = None if shift is None else shift.channels
        cov = row_window_covariance(x, geometry, summation, max_elements, channels)
    else:
        cov = _patch_covariance(x, geometry, summation, max_elements, shift)
    return (shift.restore(cov, rows) if shift is not None else cov), rows, summation


def input_covariance(
    x: torch.Tensor,
    geometry: LayerGeometry,
    *,
    dtype: torch.dtype | None = None,
    lam: float | None = None,
    max_chunk_bytes: int | None = None,
) -> tuple[torch.Tensor, int]:
    """Sum of ``row^T row`` over the input rows of one layer call, per group, and the number of rows.

    Args:
        x: the tensor the layer's Linear/convolution operation received (already padded by the layer if it
            pads on its own, e.g. reflect padding or timm's Same convolutions).
        geometry: how the call cuts ``x`` into rows.
        dtype: the summation dtype (float32: shifted, float32 partial sums, float64 total); by default
            :func:`summation_for` decides.
        lam: the regularization the covariance will be solved with, which the CPU's precision rule weighs
            (default :data:`~.precision.RULE_LAM`, the smallest it was measured at).
        max_chunk_bytes: bound on the memory of one slice of unfolded rows (default: :func:`chunk_bytes`).

    Returns:
        ``(cov, rows)`` with ``cov`` float64 of shape ``(groups, n, n)`` (not divided by ``rows``).
    """
    cov, rows, _ = input_covariance_with_summation(x, geometry, dtype=dtype, lam=lam, max_chunk_bytes=max_chunk_bytes)
    return cov, rows


__all__ = [
    "ACCELERATOR_PARTIAL_ROWS",
    "CHUNK_BYTES",
    "chunk_bytes",
    "input_covariance",
    "input_covariance_with_summation",
    "shares_rows",
    "summation_for",
]

"""The uncentered covariance ``x^T x`` of a layer's input rows, without building all rows at once.

For a convolution the rows are the unfolded patches, produced a bounded slice at a time (:mod:`.slicing`), copied
into the summation dtype and multiplied into a running ``n x n`` sum per group; overlapping kernels share the
products of their input rows (:func:`shares_rows`). Peak extra memory is one slice (``max_chunk_bytes``) and the
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
from .precision import RULE_LAM, Summation, device_summation, float32_partial_rows
from .slicing import conv_slices, linear_slices, row_views

#: Default bound on the bytes of one slice of unfolded rows, by device type. Small slices stay in the CPU's
#: caches (measured on a 2-core Xeon: 4 MiB is as fast as 32 MiB or faster, and keeps the peak memory of a
#: backward within 1.05x of vanilla on the benchmark layers); a GPU wants fewer, larger launches.
CHUNK_BYTES = {"cpu": 4 * 2**20}
DEFAULT_CHUNK_BYTES = 64 * 2**20

#: Rows per float32 partial sum on accelerators (no data-dependent choice there): long enough for full-speed
#: products, short enough that the float64 total averages most of the float32 rounding away.
ACCELERATOR_PARTIAL_ROWS = 4096

#: Input rows per matrix product in :func:`_row_window_covariance`.
ROWS_PER_PRODUCT = 2

#: From this many features on, a ``rows^T rows`` product is summed as three of its four half-size blocks and the
#: fourth mirrored at the end (measured on a CPU at n = 768: 0.78x the time of the whole product).
SPLIT_FEATURES = 256


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
    pads = [amount for before, after in reversed(geometry.padding) for amount in (before, after)]
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
    return Summation(torch.float32, partial) if partial else Summation(torch.float64)


class _Sums:
    """A running ``(groups, a, b)`` sum in the summation dtype whose float32 partial sums are added into a float64
    total every ``partial_rows`` rows."""

    def __init__(self, shape: tuple[int, ...], summation: Summation, device: torch.device) -> None:
        self.partial = torch.zeros(shape, dtype=summation.dtype, device=device)
        self.limit = summation.partial_rows if summation.dtype == torch.float32 else None
        self.total: torch.Tensor | None = None
        self.since = 0

    def before(self, rows: int) -> None:
        """Called before adding ``rows`` rows: flush the float32 partial sum if they would exceed its length."""
        if self.limit is not None and self.since and self.since + rows > self.limit:
            self._flush()
        self.since += rows

    def _flush(self) -> None:
        if self.total is None:
            self.total = self.partial.to(torch.float64)
        else:
            self.total.add_(self.partial)
        self.partial.zero_()
        self.since = 0

    def result(self) -> torch.Tensor:
        if self.partial.dtype == torch.float64:
            return self.partial
        self._flush()
        return self.total


def _add_gram(sums: torch.Tensor, rows: torch.Tensor) -> None:
    """``sums[g] += rows[:, g]^T rows[:, g]``; for one group of many features only the upper half-blocks."""
    _, groups, features = rows.shape
    if groups > 1:
        by_group = rows.transpose(0, 1)
        sums.baddbmm_(by_group.transpose(1, 2), by_group)
        return
    a = rows[:, 0]
    if features < SPLIT_FEATURES:
        sums[0].addmm_(a.T, a)
        return
    half = features // 2
    first, second = a[:, :half], a[:, half:]
    sums[0, :half, :half].addmm_(first.T, first)
    sums[0, :half, half:].addmm_(first.T, second)
    sums[0, half:, half:].addmm_(second.T, second)


def _mirrored(sums: torch.Tensor) -> torch.Tensor:
    """Complete a one-group sum of the upper half-blocks (:func:`_add_gram`)."""
    features = sums.shape[-1]
    if sums.shape[0] == 1 and features >= SPLIT_FEATURES:
        half = features // 2
        sums[0, half:, :half] = sums[0, :half, half:].T
    return sums


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
    sums = _Sums((1, features, features), summation, x.device)
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
        _add_gram(sums.partial, block[:, None])
    return _mirrored(sums.result())


def _patch_covariance(
    x: torch.Tensor, geometry: LayerGeometry, summation: Summation, max_elements: int, shift: _Shift | None
) -> torch.Tensor:
    groups, features = geometry.groups, geometry.features
    if summation.partial_rows:
        max_elements = min(max_elements, summation.partial_rows * groups * features)
    sums = _Sums((groups, features, features), summation, x.device)
    buffer: torch.Tensor | None = None
    for view in conv_slices(x, geometry, max_elements, None if shift is None else shift.channels):
        count = view.numel() // (groups * features)
        sums.before(count)
        if buffer is None or buffer.shape[0] < count:
            buffer = torch.empty((count, groups, features), dtype=summation.dtype, device=x.device)
        rows = buffer[:count]
        rows.view(view.shape).copy_(view)
        _add_gram(sums.partial, rows)
    return _channel_major(_mirrored(sums.result()), geometry)


def shares_rows(geometry: LayerGeometry) -> bool:
    """Whether :func:`_row_window_covariance` applies and saves work: one group, kernel rows overlapping along
    the first spatial dimension (kernel > stride) without dilation there."""
    return (
        geometry.kind == "conv"
        and geometry.groups == 1
        and geometry.dilation[0] == 1
        and geometry.kernel[0] > geometry.stride[0]
    )


def _row_window_covariance(
    x: torch.Tensor, geometry: LayerGeometry, summation: Summation, max_elements: int, shift: _Shift | None
) -> torch.Tensor:
    """Covariance of overlapping patches from products of input rows, each product computed once.

    Split a patch into its ``k`` kernel rows along the first spatial dimension; kernel row ``i`` of the patch at
    output row ``p`` is input row ``q = p * stride + i``, unfolded along the other dimensions (``U[q]``: ``c = C x
    k2 x ...`` numbers per position). The covariance block of kernel rows ``(i, i + d)`` is
    ``sum_p U[p*s + i]^T U[p*s + i + d]``, so each product ``U[q]^T U[q + d]`` is shared by every block with the
    same ``d``. They are computed once per input row, for all ``d`` at once, by one batched matrix product over
    strided views of ``U`` (no copy): about ``input rows / (output rows x k)`` of the work of multiplying whole
    patches (0.29 for a 7x7 stride-2 ImageNet stem, 0.35 for a 3x3 stride-1 CIFAR stem). Rows go by pairs (rows
    ``q, q + 1`` against ``q .. q + k``): ``(k + 1) / k`` of the multiplications in matrices twice as tall, which
    run faster (measured on a CPU: 0.67x the time for a 3x3 stem, 0.81x for a 7x7 one). The products are summed
    over the positions (float32 partial sums of at most ``partial_rows`` positions), the blocks over the output rows
    in float64.
    """
    k, s = geometry.kernel[0], geometry.stride[0]
    (before, after) = geometry.padding[0]
    rows_in = x.shape[2] + before + after
    rows_out = (rows_in - k) // s + 1
    channels, rest_kernel = x.shape[1], math.prod(geometry.kernel[1:])
    width = channels * rest_kernel
    pairs = -(-rows_in // ROWS_PER_PRODUCT)
    tall, wide = ROWS_PER_PRODUCT * width, (ROWS_PER_PRODUCT + k - 1) * width
    padded_rows = pairs * ROWS_PER_PRODUCT + k - 1  # zero rows after the last keep every window in bounds
    max_positions = max(1, max_elements // (padded_rows * width))
    if summation.partial_rows:
        max_positions = min(max_positions, summation.partial_rows)
    sums = _Sums((pairs, tall, wide), summation, x.device)
    row_stride = padded_rows * width
    buffer: torch.Tensor | None = None
    for view in row_views(x, geometry, max_positions, None if shift is None else shift.channels):
        lead = view.shape[: view.dim() - 2 - len(geometry.kernel[1:])]
        count = math.prod(lead)
        sums.before(count)
        if buffer is None or buffer.shape[0] < count:
            buffer = torch.empty(count, padded_rows, width, dtype=summation.dtype, device=x.device)
            buffer[:, rows_in:].zero_()  # the rows after the last stay zero; the others are overwritten
        unfolded = buffer[:count]
        unfolded[:, :rows_in].unflatten(0, lead).unflatten(-1, view.shape[-len(geometry.kernel) :]).copy_(view)
        left = unfolded.as_strided((pairs, tall, count), (tall, 1, row_stride))
        window = unfolded.as_strided((pairs, count, wide), (tall, row_stride, 1))
        sums.partial.baddbmm_(left, window)
    by_pair = sums.result()
    products = torch.empty(pairs, ROWS_PER_PRODUCT, width, k * width, dtype=torch.float64, device=x.device)
    for i in range(ROWS_PER_PRODUCT):  # row q = pair * ROWS_PER_PRODUCT + i against rows q .. q + k - 1
        products[:, i] = by_pair[:, i * width : (i + 1) * width, i * width : (i + k) * width]
    products = products.view(-1, width, k, width)[:rows_in]
    # sums[i, :, d] = sum over the output rows p of products[p * s + i, :, d]: one strided sum for every (i, d)
    rows_step = products.stride(0)
    sums = products.as_strided((k, rows_out, width, k, width), (rows_step, s * rows_step, k * width, width, 1)).sum(1)
    blocks = torch.empty(k, k, width, width, dtype=torch.float64, device=x.device)
    for first in range(k):
        upper = sums[first, :, : k - first].transpose(0, 1)  # (d, c, c'): kernel rows (first, first + d)
        blocks[first, first:] = upper
        blocks[first + 1 :, first] = upper[1:].transpose(1, 2)
    # (i, i', (kernel_rest, c), (kernel_rest', c')) -> ((c, i, kernel_rest), (c', i', kernel_rest'))
    blocks = blocks.view(k, k, rest_kernel, channels, rest_kernel, channels).permute(3, 0, 2, 5, 1, 4)
    return blocks.reshape(1, geometry.features, geometry.features)


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
    totals = None if (dtype or device_summation(x)) == torch.float64 else _Totals.of(x, geometry)
    summation = _summation(x, geometry, lam, dtype, totals)
    element = torch.empty((), dtype=summation.dtype).element_size()
    max_elements = max(1, (max_chunk_bytes or chunk_bytes(x.device)) // element)
    shift = _shift_of(geometry, totals) if totals is not None and summation.dtype == torch.float32 else None
    if geometry.kind == "linear":
        cov = _linear_covariance(x, geometry.features, summation, max_elements, shift)
    elif shares_rows(geometry):
        cov = _row_window_covariance(x, geometry, summation, max_elements, shift)
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

"""The uncentered covariance ``x^T x`` of a layer's input rows, without building all rows at once.

For a convolution the rows are the unfolded patches. They are produced a bounded slice at a time (a few
samples, or a band of output rows of one sample) as a strided view of the padded input, copied into the
accumulation dtype, and multiplied into the running ``n x n`` sum per group. Peak extra memory is therefore
one slice (``max_chunk_bytes``), whatever the batch and image size.

Example:
    >>> import torch
    >>> from tract_hub.engine.geometry import LayerGeometry
    >>> x = torch.randn(4, 10, 3)                      # (batch, tokens, features) for a Linear(3, m)
    >>> cov, rows = input_covariance(x, LayerGeometry.for_linear(torch.empty(5, 3)))
    >>> cov.shape, rows
    (torch.Size([1, 3, 3]), 40)
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .geometry import LayerGeometry
from .precision import covariance_dtype

#: Default bound on the bytes of one slice of unfolded rows, by device type. Small slices stay in the CPU's
#: caches (measured on a 2-core Xeon: 4 MiB is as fast as 32 MiB or faster, and keeps the peak memory of a
#: backward within 1.05x of vanilla on the benchmark layers); a GPU wants fewer, larger launches.
CHUNK_BYTES = {"cpu": 4 * 2**20}
DEFAULT_CHUNK_BYTES = 64 * 2**20


def chunk_bytes(device: torch.device) -> int:
    """The default bound on the memory of one slice of unfolded rows on ``device``."""
    return CHUNK_BYTES.get(device.type, DEFAULT_CHUNK_BYTES)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *S)`` as ``(B, *S, C)`` with channels contiguous, copying only when not laid out so already.

    Patches gathered from this layout copy runs of ``kernel_width x C`` contiguous numbers instead of
    ``kernel_width`` (1.5 to 2x faster gathers); inputs that are already channels_last cost no copy.
    """
    moved = x.movedim(1, -1)
    return moved if moved.is_contiguous() else moved.contiguous()


def _pad_channels_last(x: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    pads = [0, 0]
    for before, after in reversed(geometry.padding):
        pads += [before, after]
    return F.pad(x, pads) if any(pads) else x


def _prepared(x: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """A slice of the layer input, channels last and zero-padded."""
    return _pad_channels_last(_channels_last(x), geometry)


def _patch_view(x_prepared: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """A strided view ``(batch, *out, groups, *kernel, C/groups)`` of the patches of a prepared input."""
    batch, *spatial, channels = x_prepared.shape
    out = tuple(
        (size - d * (k - 1) - 1) // s + 1
        for size, k, s, d in zip(spatial, geometry.kernel, geometry.stride, geometry.dilation, strict=True)
    )
    strides = x_prepared.stride()
    group_channels = channels // geometry.groups
    shape = (batch, *out, geometry.groups, *geometry.kernel, group_channels)
    view_strides = (
        strides[0],
        *(strides[1 + i] * s for i, s in enumerate(geometry.stride)),
        strides[-1] * group_channels,
        *(strides[1 + i] * d for i, d in enumerate(geometry.dilation)),
        strides[-1],
    )
    return x_prepared.as_strided(shape, view_strides, x_prepared.storage_offset())


def _channel_major(cov: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """Reorder a ``(groups, n, n)`` covariance from features ``(*kernel, c)`` to the weight's ``(c, *kernel)``."""
    dims = len(geometry.kernel)
    group_channels = geometry.in_channels // geometry.groups
    shaped = cov.view(cov.shape[0], *geometry.kernel, group_channels, *geometry.kernel, group_channels)
    order = (0, dims + 1, *range(1, dims + 1), 2 * dims + 2, *range(dims + 2, 2 * dims + 2))
    return shaped.permute(order).reshape(cov.shape)


def _conv_slices(x: torch.Tensor, geometry: LayerGeometry, max_elements: int) -> Iterator[torch.Tensor]:
    """Yield strided views ``(b, *out_slice, groups, *kernel, Cg)`` covering all patches, each at most
    ``max_elements`` numbers (unless one output row of one sample is already larger)."""
    out = geometry.output_size(x.shape[2:])
    per_sample = math.prod(out) * geometry.groups * geometry.features
    if per_sample == 0:
        return
    if per_sample <= max_elements:
        step = max(1, max_elements // per_sample)
        for start in range(0, x.shape[0], step):
            yield _patch_view(_prepared(x[start : start + step], geometry), geometry)
        return
    per_band_row = per_sample // out[0]
    band = max(1, max_elements // per_band_row)
    for sample in range(x.shape[0]):
        view = _patch_view(_prepared(x[sample : sample + 1], geometry), geometry)
        for start in range(0, out[0], band):
            yield view[:, start : start + band]


def _linear_slices(x: torch.Tensor, features: int, max_elements: int, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    """Yield 2-d (rows, features) slices of a Linear input of any rank, copying only when needed."""
    if x.dim() == 1:
        yield x.reshape(1, features)
        return
    if x.is_contiguous():
        rows = x.view(-1, features)
        if x.dtype == dtype:
            yield rows
            return
        step = max(1, max_elements // features)
        for start in range(0, rows.shape[0], step):
            yield rows[start : start + step]
        return
    while x.dim() > 2 and x.shape[0] == 1:
        x = x[0]
    per_leading = x[0].numel() if x.shape[0] else 0
    if per_leading == 0:
        return
    step = max(1, max_elements // per_leading)
    for start in range(0, x.shape[0], step):
        yield x[start : start + step].reshape(-1, features)


def shares_rows(geometry: LayerGeometry) -> bool:
    """Whether :func:`_row_window_covariance` applies and saves work: one group, kernel rows overlapping along
    the first spatial dimension (kernel > stride) without dilation there."""
    return (
        geometry.kind == "conv"
        and geometry.groups == 1
        and geometry.dilation[0] == 1
        and geometry.kernel[0] > geometry.stride[0]
    )


def _row_views(x: torch.Tensor, geometry: LayerGeometry, max_positions: int) -> Iterator[torch.Tensor]:
    """Strided views ``(b, *out_rest, rows_in, *kernel_rest, C)`` of the prepared input: for each position along
    the spatial dimensions after the first, every input row unfolded along those dimensions. Slices over the
    batch (or, for a large sample, over the second spatial dimension) hold at most ``max_positions`` positions."""
    kernel, stride, dilation = geometry.kernel[1:], geometry.stride[1:], geometry.dilation[1:]

    def view_of(x_slice: torch.Tensor) -> torch.Tensor:
        prepared = _prepared(x_slice, geometry)
        batch, rows_in, *rest_in, channels = prepared.shape
        rest_out = [
            (n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(rest_in, kernel, stride, dilation, strict=True)
        ]
        strides = prepared.stride()
        shape = (batch, *rest_out, rows_in, *kernel, channels)
        view_strides = (
            strides[0],
            *(strides[2 + i] * s for i, s in enumerate(stride)),
            strides[1],
            *(strides[2 + i] * d for i, d in enumerate(dilation)),
            strides[-1],
        )
        return prepared.as_strided(shape, view_strides, prepared.storage_offset())

    rest_out = geometry.output_size(x.shape[2:])[1:]
    per_sample = math.prod(rest_out)
    if per_sample == 0:
        return
    if per_sample <= max_positions or not rest_out:
        step = max(1, max_positions // per_sample)
        for start in range(0, x.shape[0], step):
            yield view_of(x[start : start + step])
        return
    band = max(1, max_positions // (per_sample // rest_out[0]))
    for sample in range(x.shape[0]):
        view = view_of(x[sample : sample + 1])
        for start in range(0, rest_out[0], band):
            yield view[:, start : start + band]


def _row_window_covariance(
    x: torch.Tensor, geometry: LayerGeometry, dtype: torch.dtype, max_elements: int
) -> torch.Tensor:
    """Covariance of overlapping patches from products of input rows, each product computed once.

    Split a patch into its ``k`` kernel rows along the first spatial dimension; kernel row ``i`` of the patch at
    output row ``p`` is input row ``q = p * stride + i``, unfolded along the other dimensions (``U[q]``: ``c = C x
    k2 x ...`` numbers per position). The covariance block of kernel rows ``(i, i + d)`` is
    ``sum_p U[p*s + i]^T U[p*s + i + d]``, so each product ``U[q]^T U[q + d]`` is shared by every block with the
    same ``d``. They are computed once per input row, for all ``d`` at once, by one batched matrix product over
    strided views of ``U`` (no copy): about ``input rows / (output rows x k)`` of the work of multiplying whole
    patches (0.29 for a 7x7 stride-2 ImageNet stem, 0.35 for a 3x3 stride-1 CIFAR stem).
    """
    k, s = geometry.kernel[0], geometry.stride[0]
    (before, after) = geometry.padding[0]
    rows_in = x.shape[2] + before + after
    rows_out = (rows_in - k) // s + 1
    channels, rest_kernel = x.shape[1], math.prod(geometry.kernel[1:])
    width = channels * rest_kernel
    padded_rows = rows_in + k - 1  # zero rows after the last keep every window of k rows in bounds
    products = torch.zeros(rows_in, width, k * width, dtype=dtype, device=x.device)
    for view in _row_views(x, geometry, max(1, max_elements // (padded_rows * width))):
        lead = view.shape[: view.dim() - 2 - len(geometry.kernel[1:])]
        count = math.prod(lead)
        unfolded = torch.zeros(count, padded_rows, width, dtype=dtype, device=x.device)
        unfolded[:, :rows_in].unflatten(0, lead).unflatten(-1, view.shape[-len(geometry.kernel) :]).copy_(view)
        row_stride = padded_rows * width
        left = unfolded.as_strided((rows_in, width, count), (width, 1, row_stride))
        window = unfolded.as_strided((rows_in, count, k * width), (width, row_stride, 1))
        products.baddbmm_(left, window)
    products = products.view(rows_in, width, k, width)
    blocks = torch.empty(k, k, width, width, dtype=dtype, device=x.device)
    for first in range(k):
        stop = first + (rows_out - 1) * s + 1
        for offset in range(k - first):
            block = products[first:stop:s, :, offset].sum(0)
            blocks[first, first + offset] = block
            if offset:
                blocks[first + offset, first] = block.T
    # (i, i', (kernel_rest, c), (kernel_rest', c')) -> ((c, i, kernel_rest), (c', i', kernel_rest'))
    blocks = blocks.view(k, k, rest_kernel, channels, rest_kernel, channels).permute(3, 0, 2, 5, 1, 4)
    return blocks.reshape(1, geometry.features, geometry.features)


def input_covariance(
    x: torch.Tensor,
    geometry: LayerGeometry,
    *,
    dtype: torch.dtype | None = None,
    max_chunk_bytes: int | None = None,
) -> tuple[torch.Tensor, int]:
    """Sum of ``row^T row`` over the input rows of one layer call, per group, and the number of rows.

    Args:
        x: the tensor the layer's Linear/convolution operation received (already padded by the layer if it
            pads on its own, e.g. reflect padding or timm's Same convolutions).
        geometry: how the call cuts ``x`` into rows.
        dtype: accumulation dtype; by default :func:`~tract_hub.engine.precision.covariance_dtype` of ``x``.
        max_chunk_bytes: bound on the memory of one slice of unfolded rows (default: :func:`chunk_bytes`).

    Returns:
        ``(cov, rows)`` with ``cov`` of shape ``(groups, n, n)`` (not divided by ``rows``).
    """
    dtype = dtype or covariance_dtype(x)
    groups, features = geometry.groups, geometry.features
    cov = torch.zeros(groups, features, features, dtype=dtype, device=x.device)
    max_chunk_bytes = max_chunk_bytes or chunk_bytes(x.device)
    max_elements = max(1, max_chunk_bytes // torch.empty((), dtype=dtype).element_size())
    if geometry.kind == "linear":
        for rows in _linear_slices(x, features, max_elements, dtype):
            rows = rows.to(dtype)
            cov[0].addmm_(rows.T, rows)
        return cov, geometry.rows(x)
    if shares_rows(geometry) and x.numel():
        return _row_window_covariance(x, geometry, dtype, max_elements), geometry.rows(x)
    for view in _conv_slices(x, geometry, max_elements):
        count = view.numel() // (groups * features)
        rows = torch.empty((count, groups, features), dtype=dtype, device=x.device)
        rows.view(view.shape).copy_(view)
        if groups == 1:
            cov[0].addmm_(rows[:, 0].T, rows[:, 0])
        else:
            by_group = rows.transpose(0, 1)
            cov.baddbmm_(by_group.transpose(1, 2), by_group)
    return _channel_major(cov, geometry), geometry.rows(x)

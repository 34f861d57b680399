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

#: Default bound on the bytes of one slice of unfolded rows (in the accumulation dtype).
DEFAULT_CHUNK_BYTES = 32 * 2**20


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 inputs, float32 for every lower precision (float32, bfloat16, float16)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _pad(x: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    pads: list[int] = []
    for before, after in reversed(geometry.padding):
        pads += [before, after]
    if not any(pads):
        return x
    return F.pad(x, pads)


def _patch_view(x_padded: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    """A strided view (batch, *out, groups, C/groups, *kernel) of the patches of an already padded input."""
    batch, channels = x_padded.shape[:2]
    spatial = x_padded.shape[2:]
    out = tuple(
        (size - d * (k - 1) - 1) // s + 1
        for size, k, s, d in zip(spatial, geometry.kernel, geometry.stride, geometry.dilation, strict=True)
    )
    strides = x_padded.stride()
    group_channels = channels // geometry.groups
    shape = (batch, *out, geometry.groups, group_channels, *geometry.kernel)
    view_strides = (
        strides[0],
        *(strides[2 + i] * s for i, s in enumerate(geometry.stride)),
        strides[1] * group_channels,
        strides[1],
        *(strides[2 + i] * d for i, d in enumerate(geometry.dilation)),
    )
    return x_padded.as_strided(shape, view_strides, x_padded.storage_offset())


def _conv_slices(x: torch.Tensor, geometry: LayerGeometry, max_elements: int) -> Iterator[torch.Tensor]:
    """Yield strided views (b, *out_slice, groups, Cg, *kernel) covering all patches, each at most
    ``max_elements`` numbers (unless one output row of one sample is already larger)."""
    out = geometry.output_size(x.shape[2:])
    per_sample = math.prod(out) * geometry.groups * geometry.features
    if per_sample == 0:
        return
    if per_sample <= max_elements:
        step = max(1, max_elements // per_sample)
        for start in range(0, x.shape[0], step):
            yield _patch_view(_pad(x[start : start + step], geometry), geometry)
        return
    per_band_row = per_sample // out[0]
    band = max(1, max_elements // per_band_row)
    for sample in range(x.shape[0]):
        view = _patch_view(_pad(x[sample : sample + 1], geometry), geometry)
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


def _row_views(x_padded: torch.Tensor, geometry: LayerGeometry, max_positions: int) -> Iterator[torch.Tensor]:
    """Strided views ``(b, *out_rest, rows_in, C, *kernel_rest)`` of a padded input: for each position along the
    spatial dimensions after the first, every input row unfolded along those dimensions. Slices over the batch
    (or, for a large sample, over the second spatial dimension) hold at most ``max_positions`` positions."""
    batch, channels, rows_in, *rest_in = x_padded.shape
    kernel, stride, dilation = geometry.kernel[1:], geometry.stride[1:], geometry.dilation[1:]
    rest_out = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(rest_in, kernel, stride, dilation, strict=True)]
    strides = x_padded.stride()
    shape = (batch, *rest_out, rows_in, channels, *kernel)
    view_strides = (
        strides[0],
        *(strides[3 + i] * s for i, s in enumerate(stride)),
        strides[2],
        strides[1],
        *(strides[3 + i] * d for i, d in enumerate(dilation)),
    )
    view = x_padded.as_strided(shape, view_strides, x_padded.storage_offset())
    per_sample = math.prod(rest_out)
    if per_sample == 0:
        return
    if per_sample <= max_positions or not rest_out:
        step = max(1, max_positions // per_sample)
        for start in range(0, batch, step):
            yield view[start : start + step]
        return
    band = max(1, max_positions // (per_sample // rest_out[0]))
    for sample in range(batch):
        for start in range(0, rest_out[0], band):
            yield view[sample : sample + 1, start : start + band]


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
    x_padded = _pad(x, geometry)
    channels, rows_in = x_padded.shape[1], x_padded.shape[2]
    rows_out = (rows_in - k) // s + 1
    rest_kernel = math.prod(geometry.kernel[1:])
    width = channels * rest_kernel
    padded_rows = rows_in + k - 1  # zero rows after the last keep every window of k rows in bounds
    products = torch.zeros(rows_in, width, k * width, dtype=dtype, device=x.device)
    for view in _row_views(x_padded, geometry, max(1, max_elements // (padded_rows * width))):
        lead = view.shape[: view.dim() - 1 - len(geometry.kernel)]
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
    blocks = blocks.view(k, k, channels, rest_kernel, channels, rest_kernel).permute(2, 0, 3, 4, 1, 5)
    return blocks.reshape(1, geometry.features, geometry.features)


def input_covariance(
    x: torch.Tensor,
    geometry: LayerGeometry,
    *,
    dtype: torch.dtype | None = None,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[torch.Tensor, int]:
    """Sum of ``row^T row`` over the input rows of one layer call, per group, and the number of rows.

    Args:
        x: the tensor the layer's Linear/convolution operation received (already padded by the layer if it
            pads on its own, e.g. reflect padding or timm's Same convolutions).
        geometry: how the call cuts ``x`` into rows.
        dtype: accumulation dtype; by default :func:`accumulation_dtype` of ``x``.
        max_chunk_bytes: bound on the memory of one slice of unfolded rows.

    Returns:
        ``(cov, rows)`` with ``cov`` of shape ``(groups, n, n)`` (not divided by ``rows``).
    """
    dtype = dtype or accumulation_dtype(x.dtype)
    groups, features = geometry.groups, geometry.features
    cov = torch.zeros(groups, features, features, dtype=dtype, device=x.device)
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
    return cov, geometry.rows(x)


def unfold_rows(x: torch.Tensor, geometry: LayerGeometry, dtype: torch.dtype | None = None) -> torch.Tensor:
    """All input rows at once, shape ``(rows, groups, n)``: for small batches and for tests.

    Example:
        >>> import torch
        >>> from tract_hub.engine.geometry import LayerGeometry
        >>> geometry = LayerGeometry.for_conv(torch.empty(4, 2, 3, 3), padding=1)
        >>> unfold_rows(torch.randn(2, 2, 5, 5), geometry).shape
        torch.Size([50, 1, 18])
    """
    dtype = dtype or accumulation_dtype(x.dtype)
    if geometry.kind == "linear":
        return x.reshape(-1, 1, geometry.features).to(dtype)
    view = _patch_view(_pad(x, geometry), geometry)
    rows = torch.empty(view.shape, dtype=dtype, device=x.device)
    rows.copy_(view)
    return rows.view(-1, geometry.groups, geometry.features)

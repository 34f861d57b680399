"""The covariance of overlapping patches (kernel taller than its stride) from shared products of input rows.

Example:
    >>> import torch
    >>> from tract_hub.engine.geometry import LayerGeometry
    >>> from tract_hub.engine.precision import Summation
    >>> geometry = LayerGeometry.for_conv(torch.empty(8, 3, 3, 3), padding=1)
    >>> shares_rows(geometry)
    True
    >>> row_window_covariance(torch.randn(2, 3, 8, 8), geometry, Summation(torch.float64), 10**6).shape
    torch.Size([1, 27, 27])
"""

from __future__ import annotations

import math

import torch

from .geometry import LayerGeometry
from .precision import Summation
from .slicing import row_views
from .sums import PartialSums

#: Input rows per matrix product in :func:`row_window_covariance`.
ROWS_PER_PRODUCT = 2


def shares_rows(geometry: LayerGeometry) -> bool:
    """Whether :func:`row_window_covariance` applies and saves work: one group, kernel rows overlapping along
    the first spatial dimension (kernel > stride) without dilation there."""
    return (
        geometry.kind == "conv"
        and geometry.groups == 1
        and geometry.dilation[0] == 1
        and geometry.kernel[0] > geometry.stride[0]
    )


def row_window_covariance(
    x: torch.Tensor,
    geometry: LayerGeometry,
    summation: Summation,
    max_elements: int,
    shift: torch.Tensor | None = None,
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
    in float64. ``shift`` (per channel) is subtracted from the input first (:func:`.slicing.prepared`); the result
    is float64, in the weight's feature order.
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
    sums = PartialSums((pairs, tall, wide), summation, x.device)
    row_stride = padded_rows * width
    buffer: torch.Tensor | None = None
    for view in row_views(x, geometry, max_positions, shift):
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

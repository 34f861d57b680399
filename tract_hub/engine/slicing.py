"""Bounded slices of a layer's input rows, as strided views: never all unfolded patches at once.

A convolution's rows are its patches. They are read from a channels-last, zero-padded copy of (part of) the
input through a strided view, a slice at a time. A slice is a run of whole samples, or, for a sample larger than
the bound, one of equal bands of whole output rows (never a remainder band of a few rows). Bounds count numbers
(elements), so a float64 and a float32 summation cut the input alike.

Example:
    >>> import torch
    >>> from tract_hub.engine.geometry import LayerGeometry
    >>> geometry = LayerGeometry.for_conv(torch.empty(4, 3, 3, 3), padding=1)
    >>> [tuple(view.shape) for view in conv_slices(torch.randn(5, 3, 8, 8), geometry, max_elements=2000)]
    [(1, 8, 8, 1, 3, 3, 3), (1, 8, 8, 1, 3, 3, 3), (1, 8, 8, 1, 3, 3, 3), (1, 8, 8, 1, 3, 3, 3), (1, 8, 8, 1, 3, 3, 3)]
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .geometry import LayerGeometry

#: Kernel rows of at least this many numbers are gathered from a channels-first input as they are (see
#: :func:`reads_channels_first`).
CHANNELS_FIRST_KERNEL_WIDTH = 8


def balanced(total: int, most: int) -> int:
    """The size of each of the fewest equal parts of ``total`` that are at most ``most`` (the last may be smaller
    by less than one part per split): 112 by at most 105 gives 56, not 105 + 7."""
    parts = math.ceil(total / max(1, most))
    return math.ceil(total / max(1, parts))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *S)`` as ``(B, *S, C)`` with channels contiguous, copying only when not laid out so already.

    Patches gathered from this layout copy runs of ``kernel_width x C`` contiguous numbers instead of
    ``kernel_width`` (1.5 to 2x faster gathers); inputs that are already channels_last cost no copy.
    """
    moved = x.movedim(1, -1)
    return moved if moved.is_contiguous() else moved.contiguous()


def prepared(
    x: torch.Tensor, geometry: LayerGeometry, shift: torch.Tensor | None = None, *, channels_first: bool = False
) -> torch.Tensor:
    """A slice of the layer input, zero-padded, less the per-channel ``shift`` if given (padding included: a
    padded position then holds ``-shift``), channels last (or, with ``channels_first``, in the input's layout)."""
    pads = geometry.pad_widths
    if shift is None:
        if channels_first:
            return F.pad(x, pads) if any(pads) else x
        moved = channels_last(x)
        return F.pad(moved, [0, 0, *pads]) if any(pads) else moved
    channels = shift.view(-1, *(1,) * (x.dim() - 2))  # subtracted channels first: a fast, vectorized pass
    if any(pads) and x.dtype == shift.dtype:
        shifted = F.pad(x, pads).sub_(channels)
    else:
        shifted = (F.pad(x, pads) if any(pads) else x) - channels
    return shifted if channels_first else channels_last(shifted)


def reads_channels_first(x: torch.Tensor, geometry: LayerGeometry) -> bool:
    """Whether patches are gathered from the input's own ``(B, C, *S)`` layout, features in the weight's
    ``(channel, *kernel)`` order: for a contiguous input and kernel rows of at least
    :data:`CHANNELS_FIRST_KERNEL_WIDTH` undilated numbers: the gathers copy runs of that many contiguous numbers,
    and neither the input's channels-last copy nor the covariance's reordering is needed."""
    return x.is_contiguous() and geometry.kernel[-1] >= CHANNELS_FIRST_KERNEL_WIDTH and geometry.dilation[-1] == 1


def patch_view(x_prepared: torch.Tensor, geometry: LayerGeometry, *, channels_first: bool = False) -> torch.Tensor:
    """A strided view ``(batch, *out, groups, *kernel, C/groups)`` of the patches of a prepared input, or
    ``(batch, *out, groups, C/groups, *kernel)`` of a channels-first one."""
    strides = x_prepared.stride()
    if channels_first:
        batch, channels, *spatial = x_prepared.shape
        channel_stride, spatial_strides = strides[1], strides[2:]
    else:
        batch, *spatial, channels = x_prepared.shape
        channel_stride, spatial_strides = strides[-1], strides[1:-1]
    out = tuple(
        (size - d * (k - 1) - 1) // s + 1
        for size, k, s, d in zip(spatial, geometry.kernel, geometry.stride, geometry.dilation, strict=True)
    )
    group_channels = channels // geometry.groups
    positions = tuple(stride * s for stride, s in zip(spatial_strides, geometry.stride, strict=True))
    offsets = tuple(stride * d for stride, d in zip(spatial_strides, geometry.dilation, strict=True))
    if channels_first:
        shape = (batch, *out, geometry.groups, group_channels, *geometry.kernel)
        view_strides = (strides[0], *positions, channel_stride * group_channels, channel_stride, *offsets)
    else:
        shape = (batch, *out, geometry.groups, *geometry.kernel, group_channels)
        view_strides = (strides[0], *positions, channel_stride * group_channels, *offsets, channel_stride)
    return x_prepared.as_strided(shape, view_strides, x_prepared.storage_offset())


def conv_slices(
    x: torch.Tensor,
    geometry: LayerGeometry,
    max_elements: int,
    shift: torch.Tensor | None = None,
    *,
    channels_first: bool = False,
) -> Iterator[torch.Tensor]:
    """Strided views ``(b, *out_slice, groups, *kernel, Cg)`` (``channels_first``: ``(..., groups, Cg, *kernel)``)
    covering all patches (of the input less ``shift`` per channel, see :func:`prepared`), each of at most
    ``max_elements`` numbers unless one output row of one sample is already larger: whole samples, or equal bands
    of whole output rows of one sample."""

    def view_of(x_slice: torch.Tensor) -> torch.Tensor:
        ready = prepared(x_slice, geometry, shift, channels_first=channels_first)
        return patch_view(ready, geometry, channels_first=channels_first)

    out = geometry.output_size(x.shape[2:])
    per_sample = math.prod(out) * geometry.groups * geometry.features
    if per_sample == 0:
        return
    if per_sample <= max_elements:
        step = balanced(x.shape[0], max_elements // per_sample)
        for start in range(0, x.shape[0], step):
            yield view_of(x[start : start + step])
        return
    band = balanced(out[0], max_elements // (per_sample // out[0]))
    for sample in range(x.shape[0]):
        view = view_of(x[sample : sample + 1])
        for start in range(0, out[0], band):
            yield view[:, start : start + band]


def linear_slices(x: torch.Tensor, features: int, max_rows: int) -> Iterator[torch.Tensor]:
    """2-d ``(rows, features)`` slices of a Linear input of any rank, of at most ``max_rows`` rows where the
    input's layout allows (views, no copy)."""
    if x.dim() == 1:
        yield x.reshape(1, features)
        return
    if x.is_contiguous():
        rows = x.view(-1, features)
        step = balanced(rows.shape[0], max_rows)
        for start in range(0, rows.shape[0], step):
            yield rows[start : start + step]
        return
    while x.dim() > 2 and x.shape[0] == 1:
        x = x[0]
    per_leading = x[0].numel() // features if x.shape[0] else 0
    if per_leading == 0:
        return
    step = balanced(x.shape[0], max(1, max_rows // per_leading))
    for start in range(0, x.shape[0], step):
        yield x[start : start + step].reshape(-1, features)


def row_views(
    x: torch.Tensor, geometry: LayerGeometry, max_positions: int, shift: torch.Tensor | None = None
) -> Iterator[torch.Tensor]:
    """Strided views ``(b, *out_rest, rows_in, *kernel_rest, C)`` of the prepared input (:func:`prepared`): for
    each position along the spatial dimensions after the first, every input row unfolded along those dimensions.
    A view holds at most ``max_positions`` positions: whole samples, or equal bands along the second spatial
    dimension of one sample."""
    kernel, stride, dilation = geometry.kernel[1:], geometry.stride[1:], geometry.dilation[1:]

    def view_of(x_slice: torch.Tensor) -> torch.Tensor:
        ready = prepared(x_slice, geometry, shift)
        batch, rows_in, *rest_in, channels = ready.shape
        rest_out = [
            (n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(rest_in, kernel, stride, dilation, strict=True)
        ]
        strides = ready.stride()
        shape = (batch, *rest_out, rows_in, *kernel, channels)
        view_strides = (
            strides[0],
            *(strides[2 + i] * s for i, s in enumerate(stride)),
            strides[1],
            *(strides[2 + i] * d for i, d in enumerate(dilation)),
            strides[-1],
        )
        return ready.as_strided(shape, view_strides, ready.storage_offset())

    rest_out = geometry.output_size(x.shape[2:])[1:]
    per_sample = math.prod(rest_out)
    if per_sample == 0:
        return
    if per_sample <= max_positions or not rest_out:
        step = balanced(x.shape[0], max(1, max_positions // per_sample))
        for start in range(0, x.shape[0], step):
            yield view_of(x[start : start + step])
        return
    band = balanced(rest_out[0], max(1, max_positions // (per_sample // rest_out[0])))
    for sample in range(x.shape[0]):
        view = view_of(x[sample : sample + 1])
        for start in range(0, rest_out[0], band):
            yield view[:, start : start + band]

"""The shape of one Linear or convolution call: how its input is cut into rows of ``n`` features.

TrAct needs, for the weight ``W`` (``m x n`` per group), the rows ``x`` that multiply it: the input's last
dimension for a Linear layer, the unfolded patches for a convolution. :class:`LayerGeometry` describes that
cut for one call, with every padding form reduced to explicit (before, after) amounts per spatial dimension.

Example:
    >>> import torch
    >>> geometry = LayerGeometry.for_conv(torch.empty(8, 3, 7, 7), stride=2, padding=3, dilation=1, groups=1)
    >>> geometry.features, geometry.groups, geometry.padding
    (147, 1, ((3, 3), (3, 3)))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import InvalidArgumentError

IntOrTuple = int | Sequence[int]


def _as_tuple(value: IntOrTuple, dims: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * dims
    if len(values) != dims:
        raise InvalidArgumentError(f"{what}={value!r} has {len(values)} entries; a {dims}-d convolution needs {dims}")
    return values


def _explicit_padding(
    padding: IntOrTuple | str, kernel: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    """Reduce ``padding`` (int, tuple, ``'same'`` or ``'valid'``) to (before, after) per dimension.

    ``'same'`` follows PyTorch: total ``dilation * (kernel - 1)``, the smaller half before, the rest after.
    """
    dims = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * dims
        if padding == "same":
            totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise InvalidArgumentError(
            f"padding={padding!r} is not a padding PyTorch knows; use an int, a tuple, 'same' or 'valid'"
        )
    return tuple((p, p) for p in _as_tuple(padding, dims, "padding"))


@dataclass(frozen=True)
class LayerGeometry:
    """How one layer call turns its input into rows of ``features`` numbers, per group.

    ``kernel``, ``stride``, ``dilation`` and ``padding`` are empty for a Linear layer.
    """

    kind: str  # "linear" or "conv"
    in_channels: int
    out_channels: int
    groups: int = 1
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    padding: tuple[tuple[int, int], ...] = ()

    @classmethod
    def for_linear(cls, weight: torch.Tensor) -> LayerGeometry:
        out_features, in_features = weight.shape
        return cls(kind="linear", in_channels=in_features, out_channels=out_features)

    @classmethod
    def for_conv(
        cls,
        weight: torch.Tensor,
        stride: IntOrTuple = 1,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
    ) -> LayerGeometry:
        dims = weight.dim() - 2
        if dims not in (1, 2, 3):
            raise InvalidArgumentError(f"a convolution weight of shape {tuple(weight.shape)} is not 1-, 2- or 3-d")
        kernel = tuple(int(k) for k in weight.shape[2:])
        dilation_t = _as_tuple(dilation, dims, "dilation")
        return cls(
            kind="conv",
            in_channels=int(weight.shape[1]) * int(groups),
            out_channels=int(weight.shape[0]),
            groups=int(groups),
            kernel=kernel,
            stride=_as_tuple(stride, dims, "stride"),
            dilation=dilation_t,
            padding=_explicit_padding(padding, kernel, dilation_t),
        )

    @property
    def spatial_dims(self) -> int:
        return len(self.kernel)

    @property
    def features(self) -> int:
        """``n``: numbers per row and group (in_channels / groups x kernel volume)."""
        return self.in_channels // self.groups * math.prod(self.kernel)

    @property
    def pad_widths(self) -> list[int]:
        """The padding as ``F.pad`` takes it: (before, after) of the last spatial dimension first."""
        return [amount for before_after in reversed(self.padding) for amount in before_after]

    def output_size(self, input_size: Sequence[int]) -> tuple[int, ...]:
        """Spatial output size of the convolution for a spatial ``input_size``."""
        return tuple(
            (size + before + after - d * (k - 1) - 1) // s + 1
            for size, (before, after), k, s, d in zip(
                input_size, self.padding, self.kernel, self.stride, self.dilation, strict=True
            )
        )

    def rows(self, x: torch.Tensor) -> int:
        """``N``: how many rows the input ``x`` yields (batch x output positions, or leading dims for Linear)."""
        if self.kind == "linear":
            return x.numel() // self.in_channels
        return x.shape[0] * math.prod(self.output_size(x.shape[2:]))

    def as_ints(self) -> list[int]:
        """A flat list of ints that :meth:`from_ints` turns back into this geometry (operator arguments)."""
        padding = [amount for pair in self.padding for amount in pair]
        kind = 0 if self.kind == "linear" else 1
        head = [kind, self.in_channels, self.out_channels, self.groups, len(self.kernel)]
        return [*head, *self.kernel, *self.stride, *self.dilation, *padding]

    @classmethod
    def from_ints(cls, values: Sequence[int]) -> LayerGeometry:
        kind, in_channels, out_channels, groups, dims = values[:5]
        rest = list(values[5:])
        kernel, stride, dilation = (tuple(rest[i * dims : (i + 1) * dims]) for i in range(3))
        flat = rest[3 * dims :]
        padding = tuple((flat[2 * i], flat[2 * i + 1]) for i in range(dims))
        return cls(
            kind="linear" if kind == 0 else "conv",
            in_channels=in_channels,
            out_channels=out_channels,
            groups=groups,
            kernel=kernel,
            stride=stride,
            dilation=dilation,
            padding=padding,
        )

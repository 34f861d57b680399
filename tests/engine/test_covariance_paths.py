"""Both covariance paths (shared input rows, whole patches), sliced at any size, equal x^T x of the patches."""

from __future__ import annotations

import pytest
import torch

from tests.reference import conv_rows
from tract_hub.engine import LayerGeometry, covariance

GEOMETRIES = {
    # name: (input shape, weight shape, conv keyword arguments)
    "stem-7x7-s2": ((3, 3, 20, 20), (8, 3, 7, 7), {"stride": 2, "padding": 3}),
    "conv1d-k4": ((2, 3, 17), (4, 3, 4), {"padding": 1}),
    "conv3d-video": ((2, 2, 6, 9, 9), (4, 2, 3, 3, 3), {"stride": (1, 2, 2), "padding": 1}),
    "rect-dilated-cols": ((2, 3, 12, 13), (4, 3, 3, 5), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}),
    "same-even": ((2, 3, 12, 13), (4, 3, 4, 4), {"padding": "same"}),
    "patches-4x4": ((3, 3, 16, 18), (4, 3, 4, 4), {"stride": 4}),
    "grouped": ((2, 6, 10, 10), (6, 2, 3, 3), {"groups": 3, "padding": 1}),
    "dilated-rows": ((2, 3, 12, 12), (4, 3, 3, 3), {"dilation": 2, "padding": 2}),
}
BUDGETS = [8 * 10, 8 * 300, 8 * 5000, 2**25]


def reference(x: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    rows = conv_rows(x, geometry.kernel, geometry.stride, geometry.padding, geometry.dilation, geometry.groups)
    return rows.transpose(1, 2) @ rows


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_every_slicing_gives_the_same_covariance(name: str, channels_last: bool) -> None:
    shape, weight_shape, kwargs = GEOMETRIES[name]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    geometry = LayerGeometry.for_conv(torch.empty(weight_shape), **kwargs)
    expected = reference(x, geometry)
    for budget in BUDGETS:
        actual, rows = covariance.input_covariance(x, geometry, max_chunk_bytes=budget)
        assert rows == geometry.rows(x)
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(
    "name, shares",
    [
        ("stem-7x7-s2", True),
        ("patches-4x4", False),
        ("grouped", False),
        ("dilated-rows", False),
        ("conv3d-video", True),
    ],
)
def test_row_sharing_is_chosen_only_where_kernel_rows_overlap(name: str, shares: bool) -> None:
    _, weight_shape, kwargs = GEOMETRIES[name]
    assert covariance.shares_rows(LayerGeometry.for_conv(torch.empty(weight_shape), **kwargs)) is shares

"""Both covariance paths (shared input rows, whole patches), sliced at any size and summed either way, equal x^T x of
the patches; slices keep image rows whole."""

from __future__ import annotations

import pytest
import torch

from tests.reference import conv_rows
from tract_hub.engine import LayerGeometry, Summation, covariance, row_window, slicing, sums

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
    # kernel rows of 8 or more numbers: gathered channels first (features already in the weight's order)
    "patches-16x16": ((2, 3, 32, 48), (4, 3, 16, 16), {"stride": 16}),  # 768 features: blocks above the diagonal
    "grouped-wide-padded": ((2, 4, 10, 20), (4, 2, 2, 8), {"groups": 2, "stride": (2, 4), "padding": (0, 2)}),
    "conv1d-k16": ((2, 3, 40), (4, 3, 16), {"stride": 16, "padding": 4}),
    "dilated-rows-wide": ((2, 3, 12, 20), (4, 3, 3, 8), {"dilation": (2, 1), "stride": (1, 4)}),
    "conv3d-tubelets": ((2, 2, 4, 16, 24), (4, 2, 2, 8, 8), {"stride": (2, 8, 8)}),
}
BUDGETS = [8 * 10, 8 * 300, 8 * 5000, 2**25]


def reference(x: torch.Tensor, geometry: LayerGeometry) -> torch.Tensor:
    rows = conv_rows(x, geometry.kernel, geometry.stride, geometry.padding, geometry.dilation, geometry.groups)
    return rows.transpose(1, 2) @ rows


@pytest.mark.parametrize("unfold_whole", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_every_slicing_gives_the_same_covariance(
    name: str, channels_last: bool, unfold_whole: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sliced at any size, and (small 2-d inputs) unfolded whole with F.unfold."""
    monkeypatch.setattr(covariance, "UNFOLD_MAX_ELEMENTS", 2**30 if unfold_whole else 0)
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


@pytest.mark.parametrize("partial_rows", [None, 7, 100])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_the_float32_summation_gives_the_same_covariance(name: str, partial_rows: int | None) -> None:
    """Shifted float32 products, float32 partial sums of any length added into float64: x^T x to float32 rounding
    of the rows' spread, for inputs far from zero too (the shift is exact algebra, padding included)."""
    shape, weight_shape, kwargs = GEOMETRIES[name]
    x = 3 + torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    geometry = LayerGeometry.for_conv(torch.empty(weight_shape), **kwargs)
    expected = reference(x.float(), geometry)
    summation = Summation(torch.float32, partial_rows)
    for budget in BUDGETS:
        totals = covariance._Totals.of(x.float(), geometry)
        shift = covariance._shift_of(geometry, totals)
        max_elements = max(1, budget // 4)
        if covariance.shares_rows(geometry):
            shifted = row_window.row_window_covariance(x.float(), geometry, summation, max_elements, shift.channels)
        else:
            shifted = covariance._patch_covariance(x.float(), geometry, summation, max_elements, shift)
        actual = shift.restore(shifted, geometry.rows(x))
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize(
    "name, channels_first",
    [
        ("patches-16x16", True),
        ("grouped-wide-padded", True),
        ("conv1d-k16", True),
        ("conv3d-tubelets", True),
        ("patches-4x4", False),
    ],
)
def test_wide_kernel_rows_are_read_channels_first_from_a_contiguous_input(name: str, channels_first: bool) -> None:
    shape, weight_shape, kwargs = GEOMETRIES[name]
    geometry = LayerGeometry.for_conv(torch.empty(weight_shape), **kwargs)
    assert slicing.reads_channels_first(torch.zeros(shape), geometry) is channels_first
    if len(shape) == 4:
        channels_last = torch.zeros(shape).contiguous(memory_format=torch.channels_last)
        assert not slicing.reads_channels_first(channels_last, geometry)


@pytest.mark.parametrize("features", [1, 100, 191, 192, 200, 768, 1000])
def test_the_blocks_above_the_diagonal_cover_each_upper_entry_once(features: int) -> None:
    counts = torch.zeros(features, features, dtype=torch.int64)
    for block_rows, block_columns in sums.upper_blocks(features):
        counts[block_rows, block_columns] += 1
    assert torch.equal(counts.triu(), torch.ones(features, features, dtype=torch.int64).triu())
    rows = torch.randn(50, 1, features, dtype=torch.float64)
    total = torch.zeros(1, features, features, dtype=torch.float64)
    sums.add_gram(total, rows)
    torch.testing.assert_close(sums.mirrored(total)[0], rows[:, 0].T @ rows[:, 0], rtol=1e-12, atol=1e-12)


def test_a_large_sample_is_cut_into_equal_bands_of_whole_rows() -> None:
    """An ImageNet stem's 112 output rows under a bound of 105: two bands of 56, not 105 + 7."""
    assert slicing.balanced(112, 105) == 56
    assert slicing.balanced(128, 101) == 64
    assert slicing.balanced(10, 100) == 10
    geometry = LayerGeometry.for_conv(torch.empty(8, 3, 7, 7), stride=2, padding=3)
    x = torch.randn(2, 3, 224, 224)
    bands = [view.shape[1] for view in slicing.row_views(x, geometry, max_positions=105)]
    assert bands == [56, 56, 56, 56]
    per_row = 112 * 3 * 49
    rows = [view.shape[1] for view in slicing.conv_slices(x, geometry, max_elements=50 * per_row)]
    assert rows == [38, 38, 36] * 2

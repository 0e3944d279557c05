"""Tiling geometry: property tests, no model involved."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.pipelines.tiling import cut, padded_size, plan_axis, plan_tiles, stitch

lengths = st.integers(min_value=1, max_value=5000)


@st.composite
def tile_and_overlap(draw: st.DrawFn, smallest: int = 1) -> tuple[int, int]:
    tile = draw(st.integers(min_value=smallest, max_value=600))
    overlap = draw(st.integers(min_value=0, max_value=max(0, (tile - 1) // 2)))
    return tile, overlap


@given(lengths, tile_and_overlap())
def test_kept_parts_partition_the_axis(length: int, geometry: tuple[int, int]) -> None:
    tile, overlap = geometry
    spans = plan_axis(length, tile, overlap)
    assert spans[0].keep_start == 0 and spans[-1].keep_end == length
    for earlier, later in zip(spans, spans[1:]):
        assert earlier.keep_end == later.keep_start
    for span in spans:
        assert span.keep_start < span.keep_end
        assert 0 <= span.start and span.start + span.size <= length
        assert span.size == min(tile, length)


@given(lengths, tile_and_overlap())
def test_kept_pixels_have_full_context(length: int, geometry: tuple[int, int]) -> None:
    tile, overlap = geometry
    for span in plan_axis(length, tile, overlap):
        left_is_cut = span.start > 0
        right_is_cut = span.start + span.size < length
        if left_is_cut:
            assert span.keep_start - span.start >= overlap
        if right_is_cut:
            assert span.start + span.size - span.keep_end >= overlap


@given(lengths, tile_and_overlap())
def test_tile_count_is_minimal_for_the_step(length: int, geometry: tuple[int, int]) -> None:
    tile, overlap = geometry
    spans = plan_axis(length, tile, overlap)
    step = tile - 2 * overlap
    expected = 1 if length <= tile else 1 + -(-(length - tile) // step)
    assert len(spans) == expected


def test_image_smaller_than_a_tile_is_one_unpadded_tile() -> None:
    tiles = plan_tiles(37, 5, 64, 8)
    assert len(tiles) == 1
    assert (tiles[0].rows.size, tiles[0].cols.size) == (37, 5)


def test_one_pixel_image() -> None:
    image = np.array([[[1, 2, 3]]], np.uint8)
    tiles = plan_tiles(1, 1, 64, 8)
    assert stitch([np.repeat(np.repeat(cut(image, tiles[0]), 3, 0), 3, 1)], tiles, 1, 1, 3).shape == (3, 3, 3)


def test_overlap_must_leave_room() -> None:
    with pytest.raises(ValueError, match="twice the overlap"):
        plan_axis(100, 16, 8)


@given(
    st.integers(1, 300),
    st.integers(1, 300),
    tile_and_overlap(smallest=8),
    st.integers(1, 4),
    st.integers(1, 8),
)
def test_stitching_a_pointwise_model_reproduces_it_exactly(
    height: int, width: int, geometry: tuple[int, int], scale: int, multiple: int
) -> None:
    tile, overlap = geometry
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    tiles = plan_tiles(height, width, tile, overlap)
    outputs = []
    for t in tiles:
        piece = cut(image, t, multiple)
        assert piece.shape[0] % multiple == 0 and piece.shape[1] % multiple == 0
        outputs.append(np.repeat(np.repeat(piece, scale, 0), scale, 1))  # nearest upscale: pointwise
    expected = np.repeat(np.repeat(image, scale, 0), scale, 1)
    np.testing.assert_array_equal(stitch(outputs, tiles, height, width, scale), expected)


@given(st.integers(1, 200), st.integers(1, 9))
def test_padded_size(size: int, multiple: int) -> None:
    padded = padded_size(size, multiple, None)
    assert padded % multiple == 0 and size <= padded < size + multiple
    assert padded_size(size, multiple, 256) == 256


def test_extreme_aspect_ratio() -> None:
    tiles = plan_tiles(1, 10_000, 128, 16)
    assert all(t.rows.size == 1 for t in tiles)
    assert sum(t.cols.keep_end - t.cols.keep_start for t in tiles) == 10_000

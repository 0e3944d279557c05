"""Tiling geometry: pure functions, no model involved.

An image is covered by tiles of at most `tile` pixels per side. Neighbouring tiles overlap by at
least `2 * overlap` pixels, and each output pixel is taken from the one tile in which it lies at
least `overlap` pixels away from every cut edge (image borders are not cut edges). With `overlap`
at least the model's receptive-field radius, the stitched result equals running the whole image
at once: there are no seams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

ArrayLike = Any  # a numpy array or a torch tensor: anything with .shape and 2-D slicing


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in input pixels."""

    start: int  # first pixel the tile reads
    size: int  # pixels the tile reads
    keep_start: int  # first pixel whose output this tile provides
    keep_end: int  # one past the last such pixel


@dataclass(frozen=True)
class Tile:
    """One tile of an image: its rows and its columns."""

    rows: Span
    cols: Span


def plan_axis(length: int, tile: int, overlap: int) -> list[Span]:
    """Cover [0, length) with spans of `tile` pixels whose kept parts partition the axis."""
    if length < 1 or tile < 1 or overlap < 0:
        raise ValueError(f"need length >= 1, tile >= 1, overlap >= 0 (got {length}, {tile}, {overlap})")
    if length <= tile:
        return [Span(0, length, 0, length)]
    step = tile - 2 * overlap
    if step < 1:
        raise ValueError(f"tile {tile} must exceed twice the overlap {overlap}")
    starts = list(range(0, length - tile, step)) + [length - tile]
    # a cut between two tiles sits in the middle of their overlap: >= overlap from both edges
    cuts = [(later + earlier + tile) // 2 for earlier, later in zip(starts, starts[1:], strict=False)]
    bounds = [0, *cuts, length]
    return [Span(s, tile, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles covering a `height` x `width` image."""
    return [Tile(r, c) for r in plan_axis(height, tile, overlap) for c in plan_axis(width, tile, overlap)]


def padded_size(size: int, multiple: int, fixed: int | None) -> int:
    """Side the runtime is given for a span of `size` pixels."""
    if fixed is not None:
        return fixed
    return -(-size // multiple) * multiple


def cut(image: np.ndarray, tile: Tile, multiple: int = 1, fixed: int | None = None) -> np.ndarray:
    """The tile's pixels (a view when no padding is needed; edge-replicated padding otherwise)."""
    view = image[tile.rows.start : tile.rows.start + tile.rows.size, tile.cols.start : tile.cols.start + tile.cols.size]
    pad_bottom = padded_size(tile.rows.size, multiple, fixed) - tile.rows.size
    pad_right = padded_size(tile.cols.size, multiple, fixed) - tile.cols.size
    if pad_bottom == 0 and pad_right == 0:
        return view
    return cv2.copyMakeBorder(view, 0, pad_bottom, 0, pad_right, cv2.BORDER_REPLICATE)


def stitch(outputs: Sequence[np.ndarray], tiles: Sequence[Tile], height: int, width: int, scale: int) -> np.ndarray:
    """Assemble the kept part of every tile's output into one image `scale` times the input (one
    tile that is the whole image is returned as it is: no copy)."""
    if whole_image(outputs, tiles, height, width, scale):
        return outputs[0]
    channels = outputs[0].shape[2:]
    result = np.empty((height * scale, width * scale, *channels), dtype=outputs[0].dtype)
    stitch_into(result, outputs, tiles, scale)
    return result


def whole_image(outputs: Sequence[ArrayLike], tiles: Sequence[Tile], height: int, width: int, scale: int) -> bool:
    """True when the only tile's output is exactly the result (no padding, nothing to cut)."""
    return len(tiles) == 1 and tuple(outputs[0].shape[:2]) == (height * scale, width * scale)


def stitch_into(result: ArrayLike, outputs: Sequence[ArrayLike], tiles: Sequence[Tile], scale: int) -> ArrayLike:
    """Copy the kept part of every tile's output into `result` (numpy arrays or torch tensors alike)."""
    for out, tile in zip(outputs, tiles, strict=True):
        r0, r1 = tile.rows.keep_start * scale, tile.rows.keep_end * scale
        c0, c1 = tile.cols.keep_start * scale, tile.cols.keep_end * scale
        tr, tc = tile.rows.start * scale, tile.cols.start * scale
        result[r0:r1, c0:c1] = out[r0 - tr : r1 - tr, c0 - tc : c1 - tc]
    return result

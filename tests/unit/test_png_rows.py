"""The host side of GPU PNG decoding (`png_rows`): scanlines out of real PNGs, CRC and damage checks,
and the row filters the GPU kernel's start-up check uses. The kernel itself needs a GPU
(`service/media/device_png.py` checks it at start-up against these filters)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from service.errors import InvalidInput
from service.media.png_rows import filter_rows_by_type, filtered_rows
from tests.support.data import read_rgb, shared


def unfilter_reference(rows: np.ndarray, width: int) -> np.ndarray:
    """PNG's reconstruction, one byte at a time, as the specification writes it (slow, small images)."""
    height = rows.shape[0]
    out = np.zeros((height, width * 3), np.int32)
    for y in range(height):
        kind, raw = int(rows[y, 0]), rows[y, 1:].astype(np.int32)
        for i in range(width * 3):
            a = out[y, i - 3] if i >= 3 else 0
            b = out[y - 1, i] if y > 0 else 0
            c = out[y - 1, i - 3] if y > 0 and i >= 3 else 0
            p = a + b - c
            paeth = (
                a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else (b if abs(p - b) <= abs(p - c) else c)
            )
            out[y, i] = (raw[i] + (0, a, b, (a + b) // 2, paeth)[kind]) % 256
    return out.astype(np.uint8).reshape(height, width, 3)


def png_of(rgb: np.ndarray) -> bytes:
    """PNG by Pillow, whose adaptive filtering picks a filter type per row (OpenCV's default: Sub only)."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def test_rows_of_a_real_photo_unfilter_to_what_libpng_decodes() -> None:
    rgb = read_rgb(shared("images/astronaut.png"))[100:148, 200:264].copy()
    rows = filtered_rows(png_of(rgb))
    assert rows is not None and (rows.width, rows.height) == (64, 48)
    assert len(set(rows.rows[:, 0].tolist())) >= 2  # libpng's adaptive filtering mixes filter types
    assert np.array_equal(unfilter_reference(rows.rows, rows.width), rgb)


def test_every_filter_type_round_trips() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (25, 19, 3), dtype=np.uint8)
    pixels[:10] //= 9
    types = np.arange(25) % 5
    rows = filter_rows_by_type(pixels, types)
    assert rows.shape == (25, 1 + 19 * 3) and (rows[:, 0] == types).all()
    assert np.array_equal(unfilter_reference(rows, 19), pixels)


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((8, 8), np.uint8),  # grey
        np.zeros((8, 8, 4), np.uint8),  # RGBA
        np.zeros((8, 8, 3), np.uint16),  # 16-bit
    ],
)
def test_other_pngs_are_left_to_the_host_decoder(pixels: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", pixels)
    assert ok
    assert filtered_rows(encoded.tobytes()) is None
    assert filtered_rows(b"\xff\xd8\xff\xe0 not a png") is None


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(idat: bytes, width: int = 4, height: int = 2) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_damaged_pngs_are_refused_with_a_reason() -> None:
    good_rows = bytes([0] + [7] * 12) * 2
    assert filtered_rows(_png(zlib.compress(good_rows))) is not None
    with pytest.raises(InvalidInput, match="truncated"):
        filtered_rows(_png(zlib.compress(good_rows[:-5])))
    with pytest.raises(InvalidInput, match="unknown filter"):
        filtered_rows(_png(zlib.compress(bytes([9] + [7] * 12) * 2)))
    with pytest.raises(InvalidInput, match="corrupt image data"):
        filtered_rows(_png(b"not deflate at all"))
    broken = bytearray(_png(zlib.compress(good_rows)))
    broken[-20] ^= 0xFF  # a byte of the IDAT payload: its CRC no longer matches
    with pytest.raises(InvalidInput, match="CRC"):
        filtered_rows(bytes(broken))

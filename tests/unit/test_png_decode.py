"""The fast host PNG decoder (`png_decode`: ISA-L inflate, FFmpeg's row filters) gives exactly
libpng's pixels (OpenCV's decode) for the PNGs it takes, and leaves every other PNG to OpenCV."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from service.errors import InvalidInput
from service.media import images
from service.media.png_decode import decode_rgb_png
from service.media.png_rows import filter_rows_by_type
from tests.support.data import read_rgb, shared


def libpng(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def pillow_png(rgb: np.ndarray, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG", **options)
    return out.getvalue()


def opencv_png(rgb: np.ndarray, level: int) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, level])
    assert ok
    return encoded.tobytes()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_rows(rows: np.ndarray, width: int, idat_pieces: int = 1, height: int | None = None) -> bytes:
    """A PNG of already filtered rows, its compressed data split over `idat_pieces` IDAT chunks
    (`height`: what the header claims, by default the rows')."""
    header = struct.pack(">IIBBBBB", width, height or rows.shape[0], 8, 2, 0, 0, 0)
    data = zlib.compress(rows.tobytes(), 6)
    step = -(-len(data) // idat_pieces)
    idats = b"".join(_chunk(b"IDAT", data[i : i + step]) for i in range(0, len(data), step))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + idats + _chunk(b"IEND", b"")


@pytest.mark.parametrize("photo", ["astronaut.png", "coffee.png", "chelsea.png"])
def test_real_photos_decode_to_libpngs_pixels(photo: str) -> None:
    rgb = read_rgb(shared(f"images/{photo}"))
    for data in (pillow_png(rgb), pillow_png(rgb, compress_level=1), opencv_png(rgb, 3), opencv_png(rgb, 9)):
        decoded = decode_rgb_png(data)
        assert decoded is not None and decoded.dtype == np.uint8
        assert np.array_equal(decoded, libpng(data))
        assert np.array_equal(decoded, rgb)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (7, 3), (33, 65), (300, 17), (771, 28), (1542, 28)])
# 771 x (1 + 28 * 3) bytes of rows fill exactly one stored deflate block of 65535 bytes, 1542 two
def test_every_filter_type_and_odd_sizes(height: int, width: int) -> None:
    rng = np.random.default_rng(height * width)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[: height // 2] //= 5  # smooth rows, where the Paeth predictors tie
    rows = filter_rows_by_type(pixels, np.arange(height) % 5)
    data = png_with_rows(rows, width, idat_pieces=3)
    decoded = decode_rgb_png(data)
    assert decoded is not None and np.array_equal(decoded, pixels)
    assert np.array_equal(decoded, libpng(data))


def test_other_pngs_are_left_to_opencv() -> None:
    rgb = np.random.default_rng(5).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    keyed = pillow_png(rgb, transparency=(1, 2, 3))  # libpng turns a tRNS colour key into alpha
    assert decode_rgb_png(keyed) is None
    assert decode_rgb_png(pillow_png(np.dstack([rgb, rgb[..., :1]]))) is None  # RGBA
    assert decode_rgb_png(pillow_png(rgb[..., 0])) is None  # grey
    assert decode_rgb_png(opencv_png(rgb.astype(np.uint16) * 257, 3)) is None  # 16-bit
    palette = io.BytesIO()
    Image.fromarray(rgb).convert("P").save(palette, format="PNG")
    assert decode_rgb_png(palette.getvalue()) is None
    header = images.probe(keyed, 10**8)
    assert images.decode(keyed, header).alpha is not None  # the colour key still becomes alpha


def test_damaged_image_data_is_refused() -> None:
    rows = filter_rows_by_type(np.full((4, 4, 3), 9, np.uint8), np.zeros(4))
    good = png_with_rows(rows, 4)
    assert decode_rgb_png(good) is not None
    broken = bytearray(good)
    broken[-20] ^= 0xFF  # inside the IDAT payload
    with pytest.raises(InvalidInput, match="CRC"):
        decode_rgb_png(bytes(broken))
    with pytest.raises(InvalidInput, match="truncated"):
        decode_rgb_png(png_with_rows(rows, 4, height=5))  # the header claims a row more than the data holds


def test_the_service_decoder_takes_this_path_for_plain_rgb(monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = read_rgb(shared("images/astronaut.png"))[:64, :96].copy()
    data = pillow_png(rgb)
    header = images.probe(data, 10**8)

    def no_opencv(*_: object) -> None:
        raise AssertionError("plain RGB PNGs do not go through OpenCV")

    monkeypatch.setattr(images.cv2, "imdecode", no_opencv)
    decoded = images.decode(data, header)
    assert np.array_equal(decoded.rgb, rgb) and decoded.alpha is None and not decoded.grayscale

"""Image codecs: header checks before decoding, orientation, grayscale, alpha, 16-bit."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.media.images import EncodeOptions, decode, encode, probe

LIMIT = 10_000_000


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but whose data is tiny (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def test_declared_pixels_over_the_limit_are_refused_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge, match="40000x40000"):
        probe(png_header_only(40_000, 40_000), LIMIT)


def test_not_an_image() -> None:
    with pytest.raises(UnsupportedMediaType, match="not an image"):
        probe(b"%PDF-1.4 hello", LIMIT)


def test_truncated_image_is_a_400() -> None:
    ok, buf = cv2.imencode(".png", np.full((64, 64, 3), 200, np.uint8))
    data = buf.tobytes()[:120]
    header = probe(data, LIMIT)
    with pytest.raises(InvalidInput, match="could not be decoded"):
        decode(data, header)


def test_exif_orientation_is_applied() -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif, quality=95)
    data = buf.getvalue()
    decoded = decode(data, probe(data, LIMIT))
    assert decoded.rgb.shape == (40, 20, 3)
    assert decoded.rgb[5, 10, 0] > 200 and decoded.rgb[35, 10, 0] < 50  # red now on top


def test_grayscale_round_trips_as_grayscale() -> None:
    gray = np.tile(np.arange(32, dtype=np.uint8)[None, :] * 8, (16, 1))
    data = cv2.imencode(".png", gray)[1].tobytes()
    decoded = decode(data, probe(data, LIMIT))
    assert decoded.grayscale and decoded.rgb.shape == (16, 32, 3)
    out = cv2.imdecode(
        np.frombuffer(encode(decoded.rgb, None, True, EncodeOptions("png")), np.uint8), cv2.IMREAD_UNCHANGED
    )
    assert out.ndim == 2
    np.testing.assert_array_equal(out, gray)


def test_rgba_keeps_alpha_and_16_bit_is_reduced_to_8() -> None:
    rgba16 = np.zeros((8, 8, 4), np.uint16)
    rgba16[..., 2] = 65535  # red in BGRA order
    rgba16[..., 3] = np.arange(8, dtype=np.uint16)[None, :] * 8000
    data = cv2.imencode(".png", rgba16)[1].tobytes()
    decoded = decode(data, probe(data, LIMIT))
    assert decoded.source_bit_depth == 16 and decoded.alpha is not None
    assert decoded.rgb[0, 0].tolist() == [255, 0, 0]
    assert decoded.alpha[0].tolist() == [round(v * 8000 / 257) for v in range(8)]
    encoded = encode(decoded.rgb, decoded.alpha, False, EncodeOptions("png"))
    back = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.shape == (8, 8, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back[..., 3], decoded.alpha)


@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from(["png", "webp"]), st.integers(0, 2**32 - 1))
def test_lossless_encode_decode_round_trip(height: int, width: int, fmt: str, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    options = EncodeOptions(fmt, 9 if fmt == "png" else 100)  # type: ignore[arg-type]
    data = encode(rgb, None, False, options)
    decoded = decode(data, probe(data, LIMIT))
    if fmt == "png":
        np.testing.assert_array_equal(decoded.rgb, rgb)
    else:
        assert decoded.rgb.shape == rgb.shape


@given(st.binary(min_size=0, max_size=200))
def test_random_bytes_never_escape_as_unexpected_errors(data: bytes) -> None:
    with contextlib.suppress(InvalidInput, UnsupportedMediaType, PayloadTooLarge):
        decode(data, probe(data, LIMIT))

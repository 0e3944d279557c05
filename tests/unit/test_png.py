"""The fast PNG writer: every filter, level and channel count decodes to the exact pixels with two
independent decoders (libpng through OpenCV, Pillow); zlib stands in when ISA-L is missing."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from service.media import png
from service.media.images import EncodeOptions, encode

FILTERS = ["none", "sub", "up"]


def pillow_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image)


@given(
    height=st.integers(1, 23),
    width=st.integers(1, 31),
    channels=st.sampled_from([1, 2, 3, 4]),
    row_filter=st.sampled_from(FILTERS),
    level=st.integers(0, 9),
    seed=st.integers(0, 2**16),
)
def test_any_image_round_trips_through_pillow(
    height: int, width: int, channels: int, row_filter: str, level: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(pillow_pixels(png.encode_png(pixels, row_filter, level)), pixels)  # type: ignore[arg-type]


@pytest.mark.parametrize("row_filter", FILTERS)
def test_a_photo_round_trips_through_libpng(row_filter: str) -> None:
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), (9, 9), 3)
    data = png.encode_png(smooth, row_filter, 1)  # type: ignore[arg-type]
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, smooth)
    if row_filter != "none":  # a filter that predicts from neighbours compresses a smooth image better
        assert len(data) < len(png.encode_png(smooth, "none", 1))


def test_zlib_stands_in_without_isal(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    monkeypatch.setattr(png, "isal_zlib", None)
    assert not png.fast_deflate_available()
    np.testing.assert_array_equal(pillow_pixels(png.encode_png(pixels, "up", 1)), pixels)


def test_the_service_encoder_keeps_alpha_and_grayscale() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    rgba = pillow_pixels(encode(rgb, alpha, False, EncodeOptions("png")))
    np.testing.assert_array_equal(rgba, np.dstack([rgb, alpha]))
    gray = np.repeat(rng.integers(0, 256, (10, 12, 1), dtype=np.uint8), 3, axis=2)
    for options in (EncodeOptions("png"), EncodeOptions("png", 6, "paeth"), EncodeOptions("png", 1, "adaptive")):
        decoded = pillow_pixels(encode(gray, None, True, options))
        assert decoded.shape == (10, 12)
        np.testing.assert_array_equal(decoded, gray[:, :, 0])


def test_bad_pixels_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="1-4 channels"):
        png.encode_png(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="filtered rows"):
        png.png_from_filtered(np.zeros((4, 10), np.uint8), 4, 4, 3, 1)

"""PSNR-Y with BasicSR's convention (BT.601 studio-range luma, border cropped)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines.tooling.metrics import psnr, psnr_y, rgb_to_y


def test_luma_of_black_and_white_is_studio_range() -> None:
    pixels = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(pixels), [[16.0, 235.0]])


def test_known_offset_gives_the_analytic_psnr() -> None:
    rng = np.random.default_rng(1)
    hr = rng.integers(10, 200, (20, 24, 3), dtype=np.uint8)
    sr = hr + 2  # every channel 2 higher: Y is 2 * 219/255 higher everywhere
    expected = 10 * math.log10(255.0**2 / (2 * 219 / 255) ** 2)
    assert psnr_y(sr, hr, crop_border=0) == pytest.approx(expected, abs=1e-9)


def test_border_is_cropped_and_hr_is_cropped_to_the_output_size() -> None:
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, (21, 19, 3), dtype=np.uint8)  # larger than the output
    sr = hr[:20, :18].copy()
    sr[:2, :] = 0  # damage only the 2-pixel border
    sr[:, -2:] = 255
    assert psnr_y(sr, hr, crop_border=2) == math.inf
    assert psnr_y(sr, hr, crop_border=0) < 20


def test_mismatched_shapes_and_small_references_are_refused() -> None:
    with pytest.raises(ValueError):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        psnr_y(np.zeros((8, 8, 3), np.uint8), np.zeros((6, 8, 3), np.uint8), crop_border=2)

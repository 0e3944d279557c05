"""PSNR, including BasicSR's `calculate_psnr(..., test_y_channel=True)` convention for SR papers.

The Y channel is ITU-R BT.601 luma in the "studio" range (16..235), computed in floating point
from 8-bit RGB and not rounded; `scale` pixels are cropped at every border before the MSE.
"""

from __future__ import annotations

import math

import numpy as np

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB in 0..255 (any dtype) -> HxW float64 Y in 16..235."""
    return image.astype(np.float64) @ _Y_WEIGHTS + 16.0


def psnr(a: np.ndarray, b: np.ndarray, max_value: float = 255.0) -> float:
    """PSNR in dB between two arrays of the same shape; inf when they are equal."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(max_value**2 / mse)


def psnr_y(sr: np.ndarray, hr: np.ndarray, crop_border: int) -> float:
    """PSNR on Y of two uint8 RGB images, `crop_border` pixels cropped on each side.

    `hr` may be larger than `sr` (an HR image not yet cropped to a multiple of the scale): it
    is cropped at the bottom/right to `sr`'s size first.
    """
    h, w = sr.shape[:2]
    if hr.shape[0] < h or hr.shape[1] < w:
        raise ValueError(f"reference {hr.shape[:2]} is smaller than the output {sr.shape[:2]}")
    hr = hr[:h, :w]
    if crop_border:
        sr = sr[crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[crop_border:-crop_border, crop_border:-crop_border]
    return psnr(rgb_to_y(sr), rgb_to_y(hr))

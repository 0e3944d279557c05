"""MATLAB-compatible bicubic `imresize` (antialiased when shrinking), in numpy and torch.

A port of BasicSR's `basicsr/utils/matlab_functions.py`, written as one dense weight matrix per
axis so a resize is two matrix products: `out = Wh @ img @ Ww.T`. The weights follow MATLAB: the
cubic kernel with a = -0.5, widened by 1/scale when shrinking (antialiasing), rows normalised to
sum 1, and out-of-range taps mirrored ("symmetric" padding, the edge pixel repeated).

MATLAB resizes uint8 images one axis at a time and rounds to uint8 after each pass (rows first
when both scales are equal); `imresize(..., round_between_passes=True)` reproduces that, which
is how SR benchmark LR sets (Set5/Set14 `*_LR_bicubic`) were made.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["imresize", "imresize_torch", "resize_weights"]


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's cubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=256)
def resize_weights(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """Dense (out_len, in_len) float64 matrix of one axis of MATLAB's bicubic resize."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirrored = _mirror(indices.astype(np.int64) - 1, in_len)
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.repeat(np.arange(out_len), taps)
    np.add.at(matrix, (rows, mirrored.ravel()), weights.ravel())
    return matrix


def _mirror(indices: np.ndarray, length: int) -> np.ndarray:
    """Map 0-based indices outside [0, length) back inside, MATLAB 'symmetric' style."""
    period = 2 * length
    wrapped = np.mod(indices, period)
    return np.where(wrapped < length, wrapped, period - 1 - wrapped)


def _round_half_up(values: np.ndarray) -> np.ndarray:
    """MATLAB's round (half away from zero), for the non-negative values of pixel data."""
    return np.floor(values + 0.5)


def _out_size(size: int, scale: float) -> int:
    return int(math.ceil(size * scale))


def imresize(image: np.ndarray, scale: float, *, round_between_passes: bool | None = None) -> np.ndarray:
    """Resize an HxW or HxWxC image by `scale` the way MATLAB's `imresize(img, scale)` does.

    uint8 input gives uint8 output, rounded after each axis (MATLAB's behaviour) unless
    `round_between_passes=False`; float input gives float64 output, unclipped.
    """
    is_uint8 = image.dtype == np.uint8
    if round_between_passes is None:
        round_between_passes = is_uint8
    data = image.astype(np.float64)
    h, w = data.shape[:2]
    wh = resize_weights(h, _out_size(h, scale), float(scale))
    ww = resize_weights(w, _out_size(w, scale), float(scale))
    rows = np.tensordot(wh, data, axes=(1, 0))
    if round_between_passes:
        rows = np.clip(_round_half_up(rows), 0, 255)
    out = np.moveaxis(np.tensordot(ww, rows, axes=(1, 1)), 0, 1)
    if is_uint8:
        return np.clip(_round_half_up(out), 0, 255).astype(np.uint8)
    return out


def imresize_torch(batch: torch.Tensor, scale: float, *, round_between_passes: bool = False) -> torch.Tensor:
    """Resize an (N, C, H, W) float tensor by `scale` like `imresize`, on the tensor's device.

    With `round_between_passes=True` the values are taken as 0..255 and rounded after each axis,
    as MATLAB does for uint8 images; the result is then rounded too.
    """
    h, w = batch.shape[-2:]
    wh = torch.from_numpy(resize_weights(h, _out_size(h, scale), float(scale)))
    ww = torch.from_numpy(resize_weights(w, _out_size(w, scale), float(scale)))
    data = batch.to(torch.float64)
    rows = torch.einsum("oh,nchw->ncow", wh.to(data.device), data)
    if round_between_passes:
        rows = (rows + 0.5).floor().clamp(0, 255)
    out = torch.einsum("pw,ncow->ncop", ww.to(data.device), rows)
    if round_between_passes:
        out = (out + 0.5).floor().clamp(0, 255)
    return out.to(batch.dtype)

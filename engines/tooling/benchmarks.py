"""SR benchmark pairs and their scoring (PSNR-Y, `scale` pixels of border cropped).

Set5 uses the shipped LR files (`Set5_LR_bicubic/X{s}/<name>x{s}.png`, made by MATLAB's
imresize); other sets get LR images from our bit-exact MATLAB `imresize` of the HR image cropped
to a multiple of the scale, the same procedure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.tooling.images import list_images, mod_crop, read_rgb
from engines.tooling.imresize import imresize
from engines.tooling.metrics import psnr_y

Upscaler = Callable[[np.ndarray], np.ndarray]
"""uint8 HxWx3 RGB low-resolution image -> uint8 RGB image `scale` times larger."""


@dataclass(frozen=True)
class SRPair:
    """One benchmark image: HR cropped to a multiple of the scale, and its LR input."""

    name: str
    lr: np.ndarray
    hr: np.ndarray


def set5_pairs(root: Path, scale: int) -> list[SRPair]:
    """Set5 HR from `root/Set5` with the shipped LR from `root/Set5_LR_bicubic/X{scale}`."""
    pairs = []
    for path in list_images(root / "Set5"):
        lr = read_rgb(root / "Set5_LR_bicubic" / f"X{scale}" / f"{path.stem}x{scale}.png")
        pairs.append(SRPair(path.stem, lr, mod_crop(read_rgb(path), scale)))
    return pairs


def synthetic_pairs(folder: Path, scale: int) -> list[SRPair]:
    """HR images of `folder` with LR made by MATLAB-style bicubic downscaling."""
    pairs = []
    for path in list_images(folder):
        hr = mod_crop(read_rgb(path), scale)
        pairs.append(SRPair(path.stem, imresize(hr, 1 / scale), hr))
    return pairs


def bicubic_upscaler(scale: int) -> Upscaler:
    """MATLAB-style bicubic upscaling by `scale` (the usual SR baseline)."""
    return lambda lr: imresize(lr, scale)


def mean_psnr_y(upscale: Upscaler, pairs: Sequence[SRPair], scale: int) -> float:
    """Mean PSNR-Y over `pairs`, border of `scale` pixels cropped."""
    return float(np.mean([psnr_y(upscale(p.lr), p.hr, crop_border=scale) for p in pairs]))

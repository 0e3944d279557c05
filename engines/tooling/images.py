"""Image files and array layouts: uint8 HxWx3 RGB on disk and in numpy, float32 NCHW for models."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB; raise FileNotFoundError if it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return np.ascontiguousarray(image[..., ::-1])


def write_rgb(path: Path, image: np.ndarray) -> None:
    """Write an HxWx3 uint8 RGB image; the suffix picks the format."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise OSError(f"cannot write image {path}")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def mod_crop(image: np.ndarray, multiple: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of `multiple`."""
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central size x size window (or less where the image is smaller)."""
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top : top + size, left : left + size]


def to_nchw(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> float32 1x3xHxW in [0, 1]."""
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)


def from_nchw(batch: np.ndarray) -> np.ndarray:
    """float 1x3xHxW in [0, 1] (unclipped) -> uint8 HxWx3, clipped and rounded like the service."""
    return np.clip(np.rint(batch[0].transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)

"""Fitting an image into a detector's input and mapping boxes back: pure functions, no model.

Coordinates are continuous pixel-edge coordinates: (0, 0) is the top-left corner of the first
pixel and (width, height) the bottom-right corner of the last. `cv2.resize` maps edges linearly
(x_input = x_image * scale), so the back-mapping below is exact, not off by half a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from service.repository.tasks import PadAlign, ResizeMode


@dataclass(frozen=True)
class InputMapping:
    """Where an image lands in the model input: x_input = x_image * scale_x + pad_x (same for y)."""

    image_width: int
    image_height: int
    input_width: int
    input_height: int
    resized_width: int
    resized_height: int
    pad_x: int
    pad_y: int

    @property
    def scale_x(self) -> float:
        return self.resized_width / self.image_width

    @property
    def scale_y(self) -> float:
        return self.resized_height / self.image_height

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """[N, 4] x1, y1, x2, y2 in input pixels -> image pixels, clipped to the image."""
        out = np.empty_like(boxes, dtype=np.float64)
        out[:, 0::2] = (boxes[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.pad_y) / self.scale_y
        np.clip(out[:, 0::2], 0.0, self.image_width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, self.image_height, out=out[:, 1::2])
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """[N, 4] boxes in image pixels -> input pixels (the inverse of `to_image` inside the image)."""
        out = np.empty_like(boxes, dtype=np.float64)
        out[:, 0::2] = boxes[:, 0::2] * self.scale_x + self.pad_x
        out[:, 1::2] = boxes[:, 1::2] * self.scale_y + self.pad_y
        return out


def plan_mapping(
    width: int, height: int, input_size: tuple[int, int], mode: ResizeMode, align: PadAlign
) -> InputMapping:
    """How a `width` x `height` image fits an input of `input_size` (width, height)."""
    input_width, input_height = input_size
    if mode == "resize":
        return InputMapping(width, height, input_width, input_height, input_width, input_height, 0, 0)
    ratio = min(input_width / width, input_height / height)
    resized_width = min(input_width, max(1, round(width * ratio)))
    resized_height = min(input_height, max(1, round(height * ratio)))
    pad_x = pad_y = 0
    if align == "center":
        pad_x, pad_y = (input_width - resized_width) // 2, (input_height - resized_height) // 2
    return InputMapping(width, height, input_width, input_height, resized_width, resized_height, pad_x, pad_y)


def fit_image(rgb: np.ndarray, mapping: InputMapping, pad_value: int) -> np.ndarray:
    """The model-input image (HxWx3 uint8): `rgb` resized and placed as `mapping` says."""
    size = (mapping.resized_width, mapping.resized_height)
    resized = rgb if rgb.shape[1::-1] == size else cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    if size == (mapping.input_width, mapping.input_height):
        return np.ascontiguousarray(resized)
    canvas = np.full((mapping.input_height, mapping.input_width, 3), pad_value, np.uint8)
    canvas[mapping.pad_y : mapping.pad_y + size[1], mapping.pad_x : mapping.pad_x + size[0]] = resized
    return canvas

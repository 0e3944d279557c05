"""Drawing detections onto the image (`annotate=true`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np


class Drawable(Protocol):
    @property
    def box(self) -> tuple[float, float, float, float]: ...

    @property
    def score(self) -> float: ...

    @property
    def class_id(self) -> int: ...

    @property
    def label(self) -> str: ...


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A stable, saturated RGB colour per class (golden-angle hues)."""
    hue = int((class_id * 137.508) % 180)
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def draw_detections(rgb: np.ndarray, detections: Sequence[Drawable]) -> np.ndarray:
    """A copy of `rgb` (HxWx3) with each box outlined and captioned `label score`."""
    canvas = np.ascontiguousarray(rgb.copy())
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    font_scale = max(0.4, min(height, width) / 900)
    for det in detections:
        colour = class_colour(det.class_id)
        x1, y1, x2, y2 = (round(v) for v in det.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        caption = f"{det.label} {det.score:.2f}"
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y1 - th - base if y1 - th - base >= 0 else y1
        cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + base), colour, cv2.FILLED)
        cv2.putText(
            canvas, caption, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness, cv2.LINE_AA
        )
    return canvas

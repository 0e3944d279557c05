"""Video files as frame iterators and frame writers for the streaming example (OpenCV's FFmpeg)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np


def video_fps(path: Path) -> float:
    """The file's frame rate (25 if it does not say)."""
    capture = cv2.VideoCapture(str(path))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()
    return fps if fps > 0 else 25.0


def read_frames(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """The file's frames as HxWx3 uint8 RGB arrays, read one at a time."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"{path} is not a video OpenCV can read")
    try:
        count = 0
        while limit is None or count < limit:
            ok, bgr = capture.read()
            if not ok:
                return
            count += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


class FrameWriter:
    """Writes RGB frames to a video file (MPEG-4 Part 2 in .mp4/.avi: OpenCV's portable encoder)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray) -> None:
        if self._writer is None:
            height, width = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"cannot write a {width}x{height} video to {self.path}")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._writer is not None:
            self._writer.release()

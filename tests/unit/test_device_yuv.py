"""RGB -> 4:2:0 on the GPU path (`device.yuv420_on_device`), run here on CPU tensors and checked
against swscale (`video_encode.rgb_to_frame`), the host path it replaces for GPU models' video."""

from __future__ import annotations

import numpy as np
import pytest

from service.media.video import ColorInfo
from service.media.video_encode import rgb_to_frame, to_encoder_frame
from tests.support.data import psnr, read_rgb, shared

torch = pytest.importorskip("torch")

from service.media import device  # noqa: E402


def planes_of(frame: object) -> list[np.ndarray]:
    yuv = frame.to_ndarray(format="yuv420p")  # type: ignore[attr-defined]
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    flat = yuv.reshape(-1)
    area = height * width
    return [
        flat[:area].reshape(height, width),
        flat[area : area * 5 // 4].reshape(height // 2, width // 2),
        flat[area * 5 // 4 :].reshape(height // 2, width // 2),
    ]


@pytest.mark.parametrize(("space", "color_range"), [(1, 1), (6, 1), (1, 2), (9, 1)])
def test_device_planes_match_swscale(space: int, color_range: int) -> None:
    rgb = read_rgb(shared("images/astronaut.png"))[:256, :384].copy()
    color = ColorInfo(space, color_range, 1, 1)
    host = planes_of(rgb_to_frame(rgb, color))
    frame = to_encoder_frame(torch.from_numpy(rgb), color)
    ours = planes_of(frame)
    assert (frame.width, frame.height) == (384, 256)
    assert (frame.colorspace, frame.color_range) == (space, color_range)
    luma_error = np.abs(ours[0].astype(int) - host[0].astype(int))
    assert luma_error.max() <= 1  # the same matrix, rounding apart
    for plane in (1, 2):  # chroma: 2x2 means here, swscale's own filter there
        assert psnr(ours[plane], host[plane]) > 38.0


def test_limited_range_bounds_and_layout() -> None:
    white_black = np.zeros((4, 6, 3), np.uint8)
    white_black[:2] = 255
    planes = [np.full((4, 6), 7, np.uint8), np.full((2, 3), 7, np.uint8), np.full((2, 3), 7, np.uint8)]
    device.yuv420_into(torch.from_numpy(white_black), 6, False, planes)
    assert (planes[0][:2] == 235).all() and (planes[0][2:] == 16).all()
    assert (planes[1] == 128).all() and (planes[2] == 128).all()  # grey has no chroma


def test_planes_with_padded_rows_are_filled_row_by_row() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    padded = [np.zeros((6, 16), np.uint8), np.zeros((3, 8), np.uint8), np.zeros((3, 8), np.uint8)]
    views = [padded[0][:, :10], padded[1][:, :5], padded[2][:, :5]]
    device.yuv420_into(torch.from_numpy(rgb), 1, False, views)
    reference = [np.zeros((6, 10), np.uint8), np.zeros((3, 5), np.uint8), np.zeros((3, 5), np.uint8)]
    device.yuv420_into(torch.from_numpy(rgb), 1, False, reference)
    for view, plane, pad in zip(views, reference, padded, strict=True):
        assert (view == plane).all()
        assert (pad[:, plane.shape[1] :] == 0).all()  # the row padding is left alone


def test_odd_sizes_lose_the_last_row_and_column() -> None:
    rgb = np.full((7, 9, 3), 100, np.uint8)
    frame = to_encoder_frame(torch.from_numpy(rgb), ColorInfo(6, 1, 2, 2))
    assert (frame.width, frame.height) == (8, 6)

"""The classical DIS interpolator on synthetic motion and on real video (the fast version of
bench/interpolation_quality.py): the middle of frames t-1 and t+1 against the real frame t."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from service.runtimes import classical_interpolation
from service.runtimes.classical_interpolation import DisInterpolator
from tests.support.data import psnr, shared

CLIPS = ["asl_again.mkv", "big_buck_bunny.mp4", "car-detection.mp4"]


def _texture(height: int, width: int, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), sigma)


def test_a_translation_is_interpolated_exactly_and_t_picks_the_ends() -> None:
    texture = _texture(200, 400, 2.0, 0)
    first, second, middle = texture[:, 0:300], texture[:, 8:308], texture[:, 4:304]
    interpolator = DisInterpolator()
    made = interpolator.interpolate(first, second, 0.5)
    inner = (slice(10, -10), slice(10, -10))  # away from the edges that enter and leave the view
    average = ((first.astype(np.uint16) + second + 1) // 2).astype(np.uint8)
    assert psnr(made[inner], middle[inner]) > 45.0
    assert psnr(made[inner], middle[inner]) > psnr(average[inner], middle[inner]) + 10.0
    np.testing.assert_array_equal(interpolator.interpolate(first, second, 0.0), first)
    np.testing.assert_array_equal(interpolator.interpolate(first, second, 1.0), second)


def test_occlusion_aware_blending_helps_where_a_moving_object_hides_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    background = _texture(200, 300, 2.0, 1)
    patch = _texture(60, 60, 3.0, 2)

    def frame(x: int) -> np.ndarray:
        image = background.copy()
        image[70:130, x : x + 60] = patch
        return image

    first, second, truth = frame(100), frame(112), frame(106)
    interpolator = DisInterpolator()
    aware = interpolator.interpolate(first, second, 0.5)
    monkeypatch.setattr(classical_interpolation, "DISAGREE_FROM", 1e9)  # occlusion never decides
    plain = interpolator.interpolate(first, second, 0.5)
    for columns in (slice(100, 106), slice(166, 172)):  # background uncovered / covered by t = 0.5
        strip = (slice(70, 130), columns)
        assert psnr(aware[strip], truth[strip]) > psnr(plain[strip], truth[strip]) + 0.1


def read_frames(path: Path, limit: int) -> list[np.ndarray]:
    """The first `limit` frames of a video as HxWx3 uint8 RGB (PyAV)."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= limit:
                break
    return frames


@pytest.mark.parametrize("clip", CLIPS)
def test_the_middle_of_real_frames_beats_their_average(clip: str) -> None:
    frames = read_frames(shared(f"video/{clip}"), 240)
    interpolator = DisInterpolator()
    made, averaged = [], []
    for t in np.linspace(1, len(frames) - 2, 5).astype(int):
        before, real, after = frames[t - 1], frames[t], frames[t + 1]
        made.append(psnr(interpolator.interpolate(before, after, 0.5), real))
        averaged.append(psnr(((before.astype(np.uint16) + after + 1) // 2).astype(np.uint8), real))
    assert np.mean(made) > np.mean(averaged), (made, averaged)

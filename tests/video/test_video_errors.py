"""Bad video uploads get a clear 4xx before any output; failures after the first byte abort the stream."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.runtimes.fault_injection import FAIL_BATCH_RGB
from tests.support.data import png_bytes, shared
from tests.support.live_server import LiveServer
from tests.video.client import error_of, post_video
from tests.video.clips import noise_frames, write_clip


def assert_still_serving(server: LiveServer, clip: Path) -> None:
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    result = post_video(server, clip, content_type="video/x-matroska")
    assert result.status == 200 and result.error is None


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "small.mkv", noise_frames(6, 64, 48))


@pytest.mark.parametrize(
    "body",
    [png_bytes(np.zeros((16, 16, 3), np.uint8)), b"hello, this is not a video at all" * 10],
    ids=["png", "text"],
)
def test_not_a_video_is_415(video_server: LiveServer, small_clip: Path, body: bytes) -> None:
    result = post_video(video_server, body)
    assert result.status == 415
    code, message = error_of(result)
    assert code == "unsupported_media_type" and "MP4" in message
    assert_still_serving(video_server, small_clip)


def test_truncated_header_is_400(video_server: LiveServer, small_clip: Path) -> None:
    head = shared("video/big_buck_bunny.mp4").read_bytes()[:20_000]  # the moov box is cut
    result = post_video(video_server, head)
    assert result.status == 400
    code, message = error_of(result)
    assert code == "invalid_argument" and "truncated" in message
    assert_still_serving(video_server, small_clip)


def test_empty_multipart_video_is_400(video_server: LiveServer) -> None:
    result = post_video(video_server, b"", multipart=True)
    assert result.status == 400
    assert "no video" in error_of(result)[1]


@pytest.mark.parametrize(
    ("clip", "setting"),
    [
        ("video/big_buck_bunny.mp4", "FILTERS_VIDEO__MAX_UPLOAD_BYTES"),
        ("video/car-detection.mp4", "FILTERS_VIDEO__MAX_PIXELS"),
        ("video/asl_again.mkv", "FILTERS_VIDEO__MAX_DURATION_S"),
    ],
)
def test_real_clips_over_a_limit_are_413_naming_it(strict_server: LiveServer, clip: str, setting: str) -> None:
    result = post_video(strict_server, shared(clip))
    assert result.status == 413
    code, message = error_of(result)
    assert code == "payload_too_large" and setting in message


def test_too_many_frames_is_413(strict_server: LiveServer, tmp_path: Path) -> None:
    pts = [2 * i for i in range(50)]  # 50 frames at 50 fps: 1 s, under the duration limit
    clip = write_clip(tmp_path / "long.mkv", noise_frames(50, 32, 32), pts=pts, time_base=Fraction(1, 100), rate=50)
    result = post_video(strict_server, clip, content_type="video/x-matroska")
    assert result.status == 413
    assert "FILTERS_VIDEO__MAX_FRAMES" in error_of(result)[1]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("container=webm&codec=h264", "webm holds av1"),
        ("codec=vp8", "query parameter 'codec'"),
        ("crf=70", "query parameter 'crf'"),
        ("crf=20&bitrate=4M", "either 'crf'"),
        ("codec=h264&crf=60", "crf for h264 is 0-51"),
        ("bitrate=fast", "query parameter 'bitrate'"),
    ],
)
def test_bad_video_parameters_are_422(video_server: LiveServer, small_clip: Path, params: str, words: str) -> None:
    result = post_video(video_server, small_clip, params=params, content_type="video/x-matroska")
    assert result.status == 422
    assert words in error_of(result)[1]


def test_streams_the_container_cannot_hold_are_422_with_a_way_out(video_server: LiveServer, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "subs.mkv", noise_frames(5, 32, 32), subtitle=(0, 100, b"hello"))
    result = post_video(video_server, clip, content_type="video/x-matroska", params="container=mp4")
    assert result.status == 422
    message = error_of(result)[1]
    assert "srt" in message and "container=mkv" in message


def _fault_clip(path: Path, good: int, bad: int) -> Path:
    """Lossless (FFV1, RGB) so the magic colour survives decoding: `bad` frames of it after `good`."""
    frames = noise_frames(good, 64, 48) + [np.full((48, 64, 3), FAIL_BATCH_RGB, np.uint8)] * bad
    return write_clip(path, frames, codec="ffv1", pix_fmt="bgr0")


def test_failure_after_the_first_byte_aborts_the_stream(
    video_server: LiveServer, small_clip: Path, tmp_path: Path
) -> None:
    # 4 s of good frames: the first 2-second fragment (the first bytes) leaves before the bad ones run.
    clip = _fault_clip(tmp_path / "fails-late.mkv", good=100, bad=8)
    result = post_video(video_server, clip, content_type="video/x-matroska")
    assert result.status == 200
    assert result.data, "the stream had started"
    assert isinstance(result.error, httpx.RemoteProtocolError), "the client must see an incomplete body"
    assert_still_serving(video_server, small_clip)


def test_failure_before_the_first_byte_is_a_status(video_server: LiveServer, tmp_path: Path) -> None:
    clip = _fault_clip(tmp_path / "fails-first.mkv", good=0, bad=4)
    result = post_video(video_server, clip, content_type="video/x-matroska")
    assert result.status == 500
    assert error_of(result)[0] == "inference_failed"


def test_upload_truncated_in_its_data_is_never_a_clean_success(video_server: LiveServer, small_clip: Path) -> None:
    data = shared("video/asl_again.mkv").read_bytes()
    result = post_video(video_server, data[: len(data) // 2], content_type="video/x-matroska")
    if result.status == 200:  # the end was found after the first bytes left: the stream is aborted
        assert isinstance(result.error, httpx.RemoteProtocolError)
    else:  # or before: a status
        assert result.status == 400 and "truncated" in error_of(result)[1]
    assert_still_serving(video_server, small_clip)

"""The real clips of ../shared/data/video through `POST /v1/superres`, streamed back and decoded with PyAV."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.data import shared
from tests.support.live_server import LiveServer
from tests.video.client import ServerSampler, frames_in_flight, post_video
from tests.video.clips import VideoReport, read_report, source_report
from tests.video.conftest import FRAMES_IN_FLIGHT

SCALE = 2  # the video repository's default model


def _frame_period(report: VideoReport) -> float:
    times = report.frame_times
    return (times[-1] - times[0]) / (len(times) - 1)


def assert_same_video_at_scale(out: VideoReport, src: VideoReport) -> None:
    assert len(out.frame_times) == len(src.frame_times)
    assert (out.width, out.height) == (SCALE * src.width, SCALE * src.height)
    period = _frame_period(src)
    assert all(abs(a - b) < period / 2 for a, b in zip(out.frame_times, src.frame_times)), "timestamps moved"


def assert_audio_kept_in_sync(out: VideoReport, src: VideoReport) -> None:
    assert src.audio_span is not None and out.audio_span is not None, "the audio stream is missing"
    src_len = src.audio_span[1] - src.audio_span[0]
    out_len = out.audio_span[1] - out.audio_span[0]
    assert abs(out_len - src_len) < 1e-3, (out_len, src_len)
    period = _frame_period(src)
    src_offset = src.audio_span[0] - src.frame_times[0]
    out_offset = out.audio_span[0] - out.frame_times[0]
    assert abs(out_offset - src_offset) < period, "audio and video drifted apart by more than a frame"
    src_tail = src.audio_span[1] - src.frame_times[-1]
    out_tail = out.audio_span[1] - out.frame_times[-1]
    assert abs(out_tail - src_tail) < period


def test_mkv_raw_body_comes_back_upscaled_with_its_timestamps_and_full_range(video_server: LiveServer) -> None:
    clip = shared("video/asl_again.mkv")
    result = post_video(video_server, clip, content_type="video/x-matroska")
    assert result.status == 200, result.data[:300]
    assert result.error is None
    assert result.headers["content-type"] == "video/mp4"
    assert result.headers.get("transfer-encoding") == "chunked"
    out, src = read_report(result.data), source_report(clip)
    assert out.container.startswith("mov,mp4") and out.codec == "h264"
    assert out.pix_fmt in ("yuv420p", "yuvj420p")  # 8-bit 4:2:0 (FFmpeg names full-range H.264 yuvj420p)
    assert_same_video_at_scale(out, src)
    assert out.color_range == src.color_range  # the clip is full range (yuvj420p)
    assert out.audio_span is None


def test_mp4_multipart_with_audio_keeps_the_audio_in_sync(video_server: LiveServer) -> None:
    clip = shared("video/car-detection.mp4")
    result = post_video(video_server, clip, multipart=True, params="preset=ultrafast&crf=35")
    assert result.status == 200, result.data[:300]
    assert result.error is None
    out, src = read_report(result.data), source_report(clip)
    assert_same_video_at_scale(out, src)
    assert_audio_kept_in_sync(out, src)
    assert out.colorspace == src.colorspace


@pytest.mark.timeout(900)  # about a minute on 2 free cores; a busy machine may take several
def test_longest_clip_streams_early_and_in_bounded_memory(video_server: LiveServer, video_spool: Path) -> None:
    clip = shared("video/big_buck_bunny.mp4")
    assert frames_in_flight(video_server) == 0, "an earlier video left frames in flight"
    with ServerSampler(video_server) as sampler:
        before = sampler.rss()
        result = post_video(video_server, clip, params="preset=ultrafast&crf=35")
    assert result.status == 200, result.data[:300]
    assert result.error is None
    assert result.first_byte_s is not None and result.first_byte_s < result.total_s / 2
    out, src = read_report(result.data), source_report(clip)
    assert_same_video_at_scale(out, src)
    assert_audio_kept_in_sync(out, src)
    # Memory: the frames in flight never pass the window; the server's RSS rises once (threads,
    # codec and model buffers) and then stays flat: holding the video would take 1440 RGB frames
    # of 1280x720, 4 GB, and grow all along.
    assert sampler.frames_in_flight and max(sampler.frames_in_flight) <= FRAMES_IN_FLIGHT
    all_frames = len(src.frame_times) * out.width * out.height * 3
    rss = sampler.rss_bytes
    assert len(rss) >= 8, "too few memory samples"
    early, late = max(rss[: len(rss) // 4]), max(rss[len(rss) // 2 :])
    assert late - early < 64 * 2**20, f"RSS grew by {(late - early) / 2**20:.0f} MiB during the second half"
    assert max(rss) - before < all_frames / 4, (max(rss) - before, all_frames)
    assert not [p for p in video_spool.iterdir() if p.is_file()], "the upload was left in the spool folder"

"""What a video keeps through the filter: rotation, variable frame rate, colour, audio, subtitles;
the output codecs and containers; 10-bit input."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests.support.data import psnr
from tests.support.live_server import LiveServer
from tests.video.client import post_video
from tests.video.clips import noise_frames, read_report, source_report, write_clip

MKV = "video/x-matroska"


def test_rotation_is_kept(video_server: LiveServer, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "rotated.mp4", noise_frames(8, 64, 48), rotation=90)
    result = post_video(video_server, clip)
    assert result.status == 200 and result.error is None
    out, src = read_report(result.data), source_report(clip)
    assert src.rotation != 0 and out.rotation == src.rotation
    assert (out.width, out.height) == (2 * src.width, 2 * src.height)  # stored size; players rotate it


def test_variable_frame_rate_timestamps_are_kept(video_server: LiveServer, tmp_path: Path) -> None:
    pts = [0, 40, 120, 130, 200, 400, 410, 500, 700, 740]  # milliseconds, irregular
    clip = write_clip(tmp_path / "vfr.mkv", noise_frames(len(pts), 64, 48), pts=pts, time_base=Fraction(1, 1000))
    result = post_video(video_server, clip, content_type=MKV, params="preset=veryfast")  # B-frames on
    assert result.status == 200 and result.error is None
    out, src = read_report(result.data), source_report(clip)
    assert len(src.frame_times) == len(pts)
    assert out.frame_times == pytest.approx(src.frame_times, abs=1e-3)


def test_ten_bit_input_is_filtered_like_its_eight_bit_twin(video_server: LiveServer, tmp_path: Path) -> None:
    frames = noise_frames(6, 64, 48, seed=3)
    outputs = []
    for pix_fmt in ("yuv420p10le", "yuv420p"):
        clip = write_clip(tmp_path / f"{pix_fmt}.mkv", frames, codec="ffv1", pix_fmt=pix_fmt)
        assert source_report(clip).pix_fmt == pix_fmt
        result = post_video(video_server, clip, content_type=MKV, params="preset=ultrafast&crf=10")
        assert result.status == 200 and result.error is None
        outputs.append(read_report(result.data, keep_frames=True))
    ten, eight = outputs
    assert ten.pix_fmt == eight.pix_fmt == "yuv420p"  # documented: 8-bit output
    assert len(ten.frames) == len(eight.frames) == len(frames)
    for a, b in zip(ten.frames, eight.frames):
        assert psnr(a, b) > 30  # a wrong range or matrix would be far below


@pytest.mark.parametrize(
    ("params", "container", "decoders"),
    [
        ("codec=h265&container=mp4", "mov,mp4", {"hevc"}),
        ("codec=av1&container=webm", "matroska,webm", {"av1", "libdav1d", "libaom-av1"}),
    ],
)
def test_other_codecs_and_containers(
    video_server: LiveServer, tmp_path: Path, params: str, container: str, decoders: set[str]
) -> None:
    clip = write_clip(tmp_path / "clip.mkv", noise_frames(6, 64, 64))
    result = post_video(video_server, clip, content_type=MKV, params=f"{params}&preset=ultrafast")
    assert result.status == 200 and result.error is None
    out = read_report(result.data)
    assert out.container.startswith(container) and out.codec in decoders
    assert len(out.frame_times) == 6


def test_audio_and_subtitles_are_copied_into_matroska(video_server: LiveServer, tmp_path: Path) -> None:
    clip = write_clip(
        tmp_path / "av.mkv", noise_frames(25, 64, 48), audio_s=1.0, subtitle=(200, 500, b"hello, subtitles")
    )
    result = post_video(video_server, clip, content_type=MKV, params="container=mkv&preset=ultrafast")
    assert result.status == 200 and result.error is None
    assert result.headers["content-type"] == "video/x-matroska"
    out, src = read_report(result.data), source_report(clip)
    assert out.container.startswith("matroska")
    assert out.subtitle_packets == src.subtitle_packets and src.subtitle_packets
    assert out.audio_span == pytest.approx(src.audio_span, abs=1e-3)
    assert len(out.frame_times) == len(src.frame_times)

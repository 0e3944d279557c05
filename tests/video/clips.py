"""Small test clips made with PyAV, and what a test reads back from an output video."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def noise_frames(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random RGB frames (upscaled noise, so codecs keep them recognisable)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        small = rng.integers(0, 256, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
        frames.append(np.ascontiguousarray(np.repeat(np.repeat(small, 8, 0), 8, 1)[:height, :width]))
    return frames


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
    time_base: Fraction = Fraction(1, 25),
    rate: int = 25,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    audio_s: float | None = None,
    subtitle: tuple[int, int, bytes] | None = None,
) -> Path:
    """A clip of `frames` (RGB); optional VFR `pts`, display rotation, an audio track of
    `audio_s` seconds, and one subtitle packet (pts_ms, duration_ms, text)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate, options=options or {})
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation)
        audio = out.add_stream("aac", rate=48000) if audio_s else None
        subs = out.add_mux_stream("subrip") if subtitle else None
        if subs is not None:
            subs.time_base = Fraction(1, 1000)
        out.start_encoding()
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = pts[index] if pts else index
            frame.time_base = time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None and audio_s:
            _write_tone(out, audio, audio_s)
        if subs is not None and subtitle:
            packet = av.Packet(subtitle[2])
            packet.stream, packet.pts, packet.dts, packet.duration = subs, subtitle[0], subtitle[0], subtitle[1]
            packet.time_base = Fraction(1, 1000)
            out.mux(packet)
    return path


def _write_tone(out: av.container.OutputContainer, audio: av.AudioStream, seconds: float) -> None:
    rate, step = 48000, 1024
    total = int(seconds * rate)
    for start in range(0, total, step):
        t = (np.arange(start, min(start + step, total)) / rate).astype(np.float32)
        frame = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t))[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))


@dataclass
class VideoReport:
    """What a test checks in an output video."""

    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    frames: list[np.ndarray]
    frame_times: list[float]  # presentation time of each decoded frame, seconds
    rotation: int
    color_range: int
    colorspace: int
    audio_span: tuple[float, float] | None  # first pts and end of the last packet, seconds
    subtitle_packets: list[tuple[float, bytes]]


def read_report(data: bytes, keep_frames: bool = False) -> VideoReport:
    """Decode `data` completely with PyAV (the real client the tests compare against)."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        frames, times, first = [], [], None
        for frame in container.decode(video):
            first = first or frame
            times.append(float(frame.pts * frame.time_base))
            if keep_frames:
                frames.append(frame.to_ndarray(format="rgb24"))
        assert first is not None, "the output has no video frame"
        audio_span, subtitles = _other_streams(data)
        return VideoReport(
            container.format.name,
            video.codec_context.name,
            first.width,
            first.height,
            first.format.name,
            frames,
            times,
            first.rotation,
            first.color_range,
            first.colorspace,
            audio_span,
            subtitles,
        )


def _other_streams(data: bytes) -> tuple[tuple[float, float] | None, list[tuple[float, bytes]]]:
    with av.open(io.BytesIO(data)) as container:
        streams = [s for s in container.streams if s.type in ("audio", "subtitle")]
        if not streams:
            return None, []
        audio: list[tuple[float, float]] = []
        subtitles: list[tuple[float, bytes]] = []
        for packet in container.demux(*streams):
            if packet.pts is None or not packet.size:
                continue
            start = float(packet.pts * packet.time_base)
            if packet.stream.type == "audio":
                audio.append((start, start + float((packet.duration or 0) * packet.time_base)))
            else:
                subtitles.append((start, bytes(packet)))
        span = (min(a for a, _ in audio), max(b for _, b in audio)) if audio else None
        return span, subtitles


def source_report(path: Path) -> VideoReport:
    return read_report(path.read_bytes())

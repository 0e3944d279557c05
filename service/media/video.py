"""Video input with PyAV: probe an upload before answering, then demux and decode it.

What the service does with a video (docs/video.md has the user's view):
- Containers: MP4/MOV and Matroska/WebM, recognised from their first bytes; any video codec
  this FFmpeg build decodes. Decoding is threaded; NVDEC (FFmpeg's CUDA hwaccel) is used when a
  CUDA device answers, else the software decoder, with a log line once.
- Frames are converted to 8-bit RGB with the matrix and range they are tagged with (untagged:
  BT.601, FFmpeg's default); 10-bit input is reduced to 8 bits (the models are 8-bit).
- Audio and subtitle streams are demuxed as packets, to be copied unchanged; data and
  attachment streams are dropped.
- A stream that ends before the frames or the duration its container declares is an error
  (a truncated upload), never a silently shorter result.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.container
import av.video.stream
import numpy as np
from av.codec.hwaccel import HWAccel
from av.sidedata.sidedata import SideData
from av.sidedata.sidedata import Type as SideDataType

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.settings import VideoSettings

log = logging.getLogger(__name__)

SUPPORTED_CONTAINERS = "MP4, MOV, MKV, WebM"
_MP4_ATOMS = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_HW_DECODE: dict[str, bool] = {}  # "cuda" -> whether opening a CUDA hwaccel worked


@dataclass(frozen=True)
class ColorInfo:
    """Colour tags of the source's frames (FFmpeg's AVColor* codes), kept on the output."""

    space: int
    range: int
    primaries: int
    trc: int


@dataclass(frozen=True)
class VideoProbe:
    """What an upload holds, read before any response byte is sent."""

    container: str  # "mp4" or "matroska"
    video_index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    frame_rate: Fraction | None
    time_base: Fraction  # of the video stream: frame timestamps are in it
    duration_s: float | None
    frames: int | None  # declared by the container, else estimated from duration x rate
    declared_frames: int | None  # what the container itself states (checked after decoding)
    color: ColorInfo
    display_matrix: tuple[int, ...] | None  # rotation/flip, copied to the output stream
    copied_streams: tuple[int, ...]  # audio and subtitle stream indexes
    copied_codecs: tuple[str, ...]

    @property
    def rotation(self) -> int:
        """Degrees counter-clockwise, from the display matrix (0 without one)."""
        if self.display_matrix is None:
            return 0
        a, b = self.display_matrix[0], self.display_matrix[1]
        return round(float(np.degrees(np.arctan2(b, a)))) % 360


@dataclass(frozen=True)
class SourceFrame:
    """One decoded frame and its place in the video (its pts and time base travel with it)."""

    index: int
    frame: av.VideoFrame


@dataclass(frozen=True)
class CopiedPacket:
    """A packet of an audio or subtitle stream, muxed into the output unchanged."""

    stream_index: int
    packet: av.Packet[Any]


def sniff_container(head: bytes) -> str | None:
    """'mp4' (MP4/MOV), 'matroska' (MKV/WebM) or None, from a file's first bytes."""
    if head.startswith(_EBML_MAGIC):
        return "matroska"
    if len(head) >= 8 and head[4:8] in _MP4_ATOMS:
        return "mp4"
    return None


def probe_video(path: Path, settings: VideoSettings) -> VideoProbe:
    """Identify the upload and check it against the limits; decodes the first frame.

    Raises `UnsupportedMediaType` (415) for something that is not a supported video,
    `InvalidInput` (400) for an unreadable one, `PayloadTooLarge` (413) over a limit.
    """
    with path.open("rb") as file:
        kind = sniff_container(file.read(16))
    if kind is None:
        raise UnsupportedMediaType(f"the upload is not a video container this service reads ({SUPPORTED_CONTAINERS})")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            probe = _probe_open(container, kind)
    except av.FFmpegError as exc:
        raise InvalidInput(f"the {kind.upper()} upload is unreadable ({_reason(exc)}); is it truncated?") from None
    check_limits(probe, settings)
    return probe


def _reason(exc: av.FFmpegError) -> str:
    return str(exc.strerror or exc).rstrip(".")


def _probe_open(container: av.container.InputContainer, kind: str) -> VideoProbe:
    video = _video_stream(container)
    ctx = video.codec_context
    first = _first_frame(container, video)
    rate = video.average_rate or video.guessed_rate or video.base_rate
    duration = _duration_s(container, video)
    declared = video.frames if video.frames > 0 else None
    estimated = declared or (round(duration * float(rate)) if duration and rate else None)
    copied = [s for s in container.streams if s.type in ("audio", "subtitle")]
    return VideoProbe(
        container=kind,
        video_index=video.index,
        codec=ctx.codec.name,
        width=first.width,
        height=first.height,
        pix_fmt=first.format.name,
        bit_depth=max((c.bits for c in first.format.components), default=8),
        frame_rate=Fraction(rate) if rate else None,
        time_base=Fraction(video.time_base) if video.time_base else Fraction(1, 90000),
        duration_s=duration,
        frames=estimated,
        declared_frames=declared,
        color=ColorInfo(first.colorspace, first.color_range, first.color_primaries, first.color_trc),
        display_matrix=_display_matrix(first),
        copied_streams=tuple(s.index for s in copied),
        copied_codecs=tuple(s.codec_context.name if s.codec_context else "unknown" for s in copied),
    )


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise UnsupportedMediaType("the upload has no video stream (audio only?); send a video")
    video = container.streams.video[0]
    if video.codec_context is None:
        raise UnsupportedMediaType("the upload's video codec is not one this server can decode")
    return video


def _first_frame(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> av.VideoFrame:
    try:
        for frame in container.decode(video):
            return frame
    except av.FFmpegError as exc:
        raise InvalidInput(
            f"the {video.codec_context.name} video stream could not be decoded ({_reason(exc)})"
        ) from None
    raise InvalidInput("the video stream holds no decodable frame (a truncated or corrupt upload?)")


def _duration_s(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> float | None:
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    tag = video.metadata.get("DURATION") or video.metadata.get("duration")
    if tag and (m := re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip())):
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return container.duration / 1_000_000 if container.duration else None


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    for data in cast(Iterable[SideData], frame.side_data):  # the stub types the container as one item
        if data.type == SideDataType.DISPLAYMATRIX:
            matrix = tuple(int(v) for v in np.frombuffer(bytes(data), dtype="<i4")[:9])
            identity = (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)
            return None if matrix == identity else matrix
    return None


def check_limits(probe: VideoProbe, settings: VideoSettings) -> None:
    """Refuse (413) a video over the pixel, duration or frame limits, naming the limit."""
    pixels = probe.width * probe.height
    if pixels > settings.max_pixels:
        raise PayloadTooLarge(
            f"the video's frames are {probe.width}x{probe.height} ({pixels} pixels); the limit is "
            f"{settings.max_pixels} pixels (FILTERS_VIDEO__MAX_PIXELS)"
        )
    if probe.duration_s is not None and probe.duration_s > settings.max_duration_s:
        raise PayloadTooLarge(
            f"the video is {probe.duration_s:.1f} s long; the limit is {settings.max_duration_s:g} s "
            "(FILTERS_VIDEO__MAX_DURATION_S)"
        )
    if probe.frames is not None and probe.frames > settings.max_frames:
        raise PayloadTooLarge(
            f"the video has {probe.frames} frames; the limit is {settings.max_frames} (FILTERS_VIDEO__MAX_FRAMES)"
        )


def read_video(
    path: Path, probe: VideoProbe, settings: VideoSettings
) -> Generator[SourceFrame | CopiedPacket, None, None]:
    """Frames of the video stream and packets of the copied streams, in file order (blocking: run
    it on a worker thread). Raises if the stream ends early or passes the frame limit."""
    hardware = settings.hardware_codecs and probe.width * probe.height >= settings.hardware_decode_min_pixels
    with _open_for_decoding(path, hardware) as container:
        video = container.streams[probe.video_index]
        assert isinstance(video, av.video.stream.VideoStream)
        video.thread_type = "AUTO"
        video.thread_count = decode_threads(probe, settings)
        copied = [container.streams[i] for i in probe.copied_streams]
        counter = _FrameCounter(probe, settings.max_frames)
        for packet in container.demux(video, *copied):
            if packet.stream.index != probe.video_index:
                if packet.size:
                    yield CopiedPacket(packet.stream.index, packet)
                continue
            for frame in _decode(video, packet):
                yield SourceFrame(counter.count(frame), frame)
        counter.check_complete()


def decode_threads(probe: VideoProbe, settings: VideoSettings) -> int:
    """Decoder threads for the upload: the setting, or two per megapixel (at least 2, at most a core each).

    FFmpeg's own choice is a thread per core and one more: on the H200's 16 cores, 17 frame
    threads for 960x540 H.264, 0.65 cores busy at 180 frames/s (bench/results/video_h200_run8_60s.md),
    on a host whose encoder wants every core; each frame thread also delays the first frame."""
    if settings.decode_threads:
        return settings.decode_threads
    megapixels = probe.width * probe.height / 1e6
    return max(2, min(os.cpu_count() or 1, math.ceil(2 * megapixels)))


def _decode(video: av.video.stream.VideoStream, packet: av.Packet[Any]) -> list[av.VideoFrame]:
    try:
        return video.decode(packet)
    except av.FFmpegError as exc:
        raise InvalidInput(f"the video stream is corrupt ({_reason(exc)})") from None


def _open_for_decoding(path: Path, hardware: bool) -> av.container.InputContainer:
    """The upload opened for decoding, on NVDEC when allowed and a CUDA device answers."""
    if hardware and _HW_DECODE.get("cuda", True):
        try:
            container = av.open(str(path), hwaccel=HWAccel("cuda", allow_software_fallback=True))
            if not _HW_DECODE.get("cuda"):
                log.info("video decoding uses NVDEC (CUDA hwaccel)")
            _HW_DECODE["cuda"] = True
            return container
        except av.FFmpegError as exc:
            _HW_DECODE["cuda"] = False
            log.info("NVDEC is not available (%s); video decoding runs on the CPU", _reason(exc))
    return av.open(str(path), metadata_errors="ignore")


class _FrameCounter:
    """Counts decoded frames against the limit and, at the end, against what the container declared."""

    def __init__(self, probe: VideoProbe, max_frames: int) -> None:
        self._probe = probe
        self._max = max_frames
        self._count = 0
        self._end_s = 0.0

    def count(self, frame: av.VideoFrame) -> int:
        if self._count >= self._max:
            raise PayloadTooLarge(f"the video has more than {self._max} frames (FILTERS_VIDEO__MAX_FRAMES)")
        if frame.pts is not None and frame.time_base is not None:
            period = 1 / float(self._probe.frame_rate) if self._probe.frame_rate else 0.0
            self._end_s = max(self._end_s, float(frame.pts * frame.time_base) + period)
        self._count += 1
        return self._count - 1

    def check_complete(self) -> None:
        declared, duration = self._probe.declared_frames, self._probe.duration_s
        if self._count == 0:
            raise InvalidInput("the video stream holds no decodable frame (a truncated or corrupt upload?)")
        if declared is not None and self._count < declared - max(2, declared // 100):
            raise InvalidInput(
                f"the video stream ended after {self._count} of the {declared} frames its container declares "
                "(truncated or corrupt upload)"
            )
        if declared is None and duration is not None and self._probe.frame_rate:
            slack = max(1 / float(self._probe.frame_rate), duration / 100)
            if self._end_s + slack < duration:
                raise InvalidInput(
                    f"the video stream ended at {self._end_s:.2f} s of the {duration:.2f} s its container declares "
                    "(truncated or corrupt upload)"
                )


SWSCALE_THREADS = 1
"""Threads of each pixel-format conversion. PyAV's default (0: one per core) gives every frame
a swscale context with its own thread pool, started for that frame and kept while it lives: on
the H200's 16 cores ~16 threads made per frame and 400 alive in a busy server; 3x slower per
960x540 frame even on 2 cores. Frames are converted in parallel on the codec pool instead."""


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """HxWx3 uint8 RGB, converted with the frame's own matrix and range (untagged: BT.601)."""
    rgb: np.ndarray = frame.to_ndarray(format="rgb24", threads=SWSCALE_THREADS)
    return rgb

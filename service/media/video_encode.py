"""Video output with PyAV: encode filtered frames, copy the other streams, mux a streamable file.

- Codecs: H.264 (libx264; h264_nvenc when the GPU has NVENC), H.265 (libx265 / hevc_nvenc),
  AV1 (libsvtav1 / av1_nvenc). 8-bit 4:2:0 always: the models produce 8-bit RGB.
- Containers: fragmented MP4 (`frag_keyframe+empty_moov+default_base_moof+delay_moov`: the
  header waits for the first fragment so that it can carry the edit list that keeps the first
  frame's timestamp despite the B-frame delay), or live-style Matroska / WebM. Both are written
  front to back into a non-seekable sink, so their bytes can be sent while the rest is still
  being encoded. Fragments start at key frames, which come at least every 2 seconds, and end after
  `FILTERS_VIDEO__FRAGMENT_S` (0.5 s) at the latest.
- Each frame keeps its source timestamp (variable frame rate survives; with `rate_factor` the
  output time base is the source's / rate_factor, for frame-rate multiplication), the display matrix
  (rotation) and the colour tags are copied; untagged sources are tagged BT.601, the matrix
  they were decoded with, so players do not switch to BT.709 for the larger output.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import av
import av.container
import av.stream
import av.video.plane
import av.video.stream
import numpy as np
from av.video.codeccontext import VideoCodecContext

from service.errors import Unprocessable
from service.media.mux_thread import MuxThread
from service.media.video import SWSCALE_THREADS, ColorInfo, CopiedPacket, VideoProbe
from service.media.video_segments import SegmentEncoders

log = logging.getLogger(__name__)

VideoCodec = Literal["h264", "h265", "av1"]
OutputContainer = Literal["mp4", "mkv", "webm"]
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
PRESETS: tuple[Preset, ...] = get_args(Preset)
CRF_RANGE: dict[VideoCodec, tuple[int, int]] = {"h264": (0, 51), "h265": (0, 51), "av1": (0, 63)}
DEFAULT_CRF: dict[VideoCodec, int] = {"h264": 23, "h265": 28, "av1": 35}
GOP_SECONDS = 2.0
OUTPUT_WRITE_BYTES = 1 << 20
"""The muxer's write size into a Python sink. PyAV's default (32 KiB) turns a 4K stream's ~50-100 MB/s
into thousands of callbacks a second, each taking the GIL from the encoder's feeding thread and
waking the event loop. Fragments and clusters still leave when they end: the muxers flush then."""
_SOFTWARE: dict[VideoCodec, str] = {"h264": "libx264", "h265": "libx265", "av1": "libsvtav1"}
_NVENC: dict[VideoCodec, str] = {"h264": "h264_nvenc", "h265": "hevc_nvenc", "av1": "av1_nvenc"}
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_BT601 = 6


@dataclass(frozen=True)
class ContainerSpec:
    """An output container: FFmpeg muxer, media type, muxer options, video codecs it holds."""

    format: str
    media_type: str
    options: dict[str, str]
    codecs: tuple[VideoCodec, ...]


CONTAINERS: dict[OutputContainer, ContainerSpec] = {
    "mp4": ContainerSpec(
        "mp4",
        "video/mp4",
        {"movflags": "frag_keyframe+empty_moov+default_base_moof+delay_moov"},
        ("h264", "h265", "av1"),
    ),
    "mkv": ContainerSpec("matroska", "video/x-matroska", {"live": "1"}, ("h264", "h265", "av1")),
    "webm": ContainerSpec("webm", "video/webm", {"live": "1"}, ("av1",)),
}


def muxer_options(spec: ContainerSpec, fragment_s: float) -> dict[str, str]:
    """The container's muxer options; an MP4's fragments also end after `fragment_s` (0: only at key
    frames). Fragments that start between key frames play like any other (MSE needs a key frame only
    at the start of the stream, and after a seek, where the player looks for one)."""
    options = dict(spec.options)
    if spec.format == "mp4" and fragment_s > 0:
        options["frag_duration"] = str(round(fragment_s * 1e6))
    return options


@dataclass(frozen=True)
class VideoEncodeOptions:
    """What the client asked for: codec, container and rate control (`crf` or `bitrate`)."""

    codec: VideoCodec = "h264"
    container: OutputContainer = "mp4"
    crf: int | None = None
    bitrate: int | None = None  # bits per second
    preset: Preset = "veryfast"

    @property
    def media_type(self) -> str:
        return CONTAINERS[self.container].media_type


class ByteSink(Protocol):
    """Where the muxer writes, front to back (never seeks)."""

    def write(self, data: bytes) -> int: ...


OutputTarget = ByteSink | str
"""A `ByteSink` (PyAV calls its `write` with the GIL held), or a file path / FFmpeg URL."""


class _DiscardableSink:
    """A `ByteSink` that can be told to drop what it is given: after a failure the muxer still
    writes its trailer while closing, and a sink that raised there (its reader gone) would stop
    PyAV's close half-way, leaving the encoder (libx264's threads and frames) to the garbage
    collector."""

    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink
        self.discarding = False

    def write(self, data: bytes) -> int:
        return len(data) if self.discarding else self._sink.write(data)


def validate_options(options: VideoEncodeOptions) -> None:
    """Refuse (422) combinations no encoder or container takes."""
    spec = CONTAINERS[options.container]
    if options.codec not in spec.codecs:
        raise Unprocessable(
            f"{options.container} holds {', '.join(spec.codecs)} video, not {options.codec}; "
            "ask for another codec, or container=mp4 or mkv"
        )
    if options.crf is not None and options.bitrate is not None:
        raise Unprocessable("give either 'crf' (constant quality) or 'bitrate', not both")
    low, high = CRF_RANGE[options.codec]
    if options.crf is not None and not low <= options.crf <= high:
        raise Unprocessable(f"crf for {options.codec} is {low}-{high}, got {options.crf}")


def check_copyable(probe: VideoProbe, options: VideoEncodeOptions) -> None:
    """Refuse (422) an output container that cannot hold the source's audio/subtitle codecs."""
    fitting = {name: supported_codecs(spec.format) for name, spec in CONTAINERS.items()}
    wanted = fitting[options.container]
    missing = sorted({c for c in probe.copied_codecs if c not in wanted})
    if missing:
        others = [name for name, codecs in fitting.items() if all(c in codecs for c in probe.copied_codecs)]
        hint = f"ask for container={' or '.join(others)}" if others else "remux the upload without those streams"
        raise Unprocessable(
            f"the upload's {', '.join(missing)} streams are copied unchanged, and {options.container} cannot hold "
            f"them; {hint}"
        )


@functools.cache
def supported_codecs(muxer: str) -> frozenset[str]:
    """Codecs the FFmpeg muxer `muxer` can hold."""
    with av.open(io.BytesIO(), "w", format=muxer) as probe:
        return frozenset(probe.supported_codecs)


@dataclass(frozen=True)
class EncoderChoice:
    """The FFmpeg encoder and its options for a request."""

    name: str
    options: dict[str, str] = field(default_factory=dict)
    bit_rate: int | None = None


def choose_encoder(options: VideoEncodeOptions, hardware: bool) -> EncoderChoice:
    """NVENC when allowed and present, else the software encoder, with the rate control asked for."""
    if hardware and nvenc_available(_NVENC[options.codec]):
        return _nvenc(options)
    rank = PRESETS.index(options.preset)
    name = _SOFTWARE[options.codec]
    opts: dict[str, str] = {}
    if options.codec == "av1":
        opts["preset"] = str((12, 11, 10, 9, 8, 7, 5, 4, 2)[rank])
    else:
        opts["preset"] = options.preset
    if options.codec == "h265":
        opts["x265-params"] = "log-level=error"
    if options.bitrate is None:
        opts["crf"] = str(options.crf if options.crf is not None else DEFAULT_CRF[options.codec])
    return EncoderChoice(name, opts, options.bitrate)


def _nvenc(options: VideoEncodeOptions) -> EncoderChoice:
    preset = ("p1", "p2", "p3", "p4", "p4", "p5", "p6", "p7", "p7")[PRESETS.index(options.preset)]
    opts = {"preset": preset, "rc": "vbr"}
    if options.bitrate is None:
        opts["cq"] = str(options.crf if options.crf is not None else DEFAULT_CRF[options.codec])
    return EncoderChoice(_NVENC[options.codec], opts, options.bitrate)


@functools.cache
def nvenc_available(name: str) -> bool:
    """Whether encoder `name` opens here (an NVIDIA GPU with NVENC and a driver that has it)."""
    try:
        ctx = av.CodecContext.create(name, "w")
        assert isinstance(ctx, VideoCodecContext)
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 256, 256, "yuv420p", Fraction(1, 25)
        ctx.open()
    except (av.FFmpegError, ValueError) as exc:
        log.info("%s is not available (%s); video encodes on the CPU", name, exc)
        return False
    log.info("video encoding uses %s", name)
    return True


def output_color(color: ColorInfo) -> ColorInfo:
    """The output's colour tags: the source's, with an untagged matrix made explicit (BT.601)."""
    space = color.space if color.space in _MATRIX else _BT601
    return ColorInfo(space, 2 if color.range == 2 else 1, color.primaries, color.trc)


def rgb_to_frame(rgb: np.ndarray, color: ColorInfo) -> av.VideoFrame:
    """8-bit 4:2:0 frame for the encoder, converted with the output's matrix and range.

    Odd sizes lose their last row/column (4:2:0 encoders need even sizes)."""
    height, width = rgb.shape[0] & ~1, rgb.shape[1] & ~1
    if (height, width) != rgb.shape[:2]:
        rgb = np.ascontiguousarray(rgb[:height, :width])
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p",
        dst_colorspace=_MATRIX[color.space],
        dst_color_range="JPEG" if color.range == 2 else "MPEG",
        threads=SWSCALE_THREADS,
    )
    return tag_frame(frame, color)


def device_rgb_to_frame(rgb: Any, color: ColorInfo, wrap: bool = True) -> av.VideoFrame:
    """`rgb_to_frame` for HxWx3 uint8 RGB on a GPU (a torch tensor): converted to 4:2:0 there, only
    the planes are downloaded, and (with `wrap`) the frame is made over that pinned memory
    (`device_yuv.i420_frame`)."""
    from service.media import device_yuv

    height, width = int(rgb.shape[0]) & ~1, int(rgb.shape[1]) & ~1
    return tag_frame(device_yuv.i420_frame(rgb[:height, :width], color.space, color.range == 2, wrap), color)


def to_encoder_frame(filtered: Any, color: ColorInfo, wrap: bool = True) -> av.VideoFrame:
    """A filtered frame (host RGB array, or RGB tensor on a GPU) as the encoder's 4:2:0 frame;
    `wrap=False` when frames may wait long for the encoder (`device_yuv.i420_frame`)."""
    if isinstance(filtered, np.ndarray):
        return rgb_to_frame(filtered, color)
    return device_rgb_to_frame(filtered, color, wrap)


def tag_frame(frame: av.VideoFrame, color: ColorInfo) -> av.VideoFrame:
    frame.colorspace, frame.color_range = color.space, color.range
    frame.color_primaries, frame.color_trc = color.primaries, color.trc
    return frame


class VideoWriter:
    """Encodes frames and muxes them with the copied streams into `sink`; call it from one thread
    (the muxing runs on a `MuxThread` of its own once the first frame has started the file).

    The video stream is added at the first frame (its size is the filter's output size), then the
    copied streams; the first bytes leave with the first fragment (MP4) or at once (Matroska).
    With `segments` > 1, that many encoders take consecutive GOPs in parallel (video_segments.py).
    With `rate_factor` > 1 the stream's time base is the source's / rate_factor and its frame rate
    the source's x rate_factor (frames' pts are then in that time base). `threads`: the one
    encoder's threads (0: its own choice, 1.5 per core for libx264). `fragment_s`: an MP4's longest
    fragment (`muxer_options`).
    """

    def __init__(
        self,
        sink: OutputTarget,
        source: Path,
        probe: VideoProbe,
        options: VideoEncodeOptions,
        hardware: bool,
        segments: int = 1,
        rate_factor: int = 1,
        threads: int = 0,
        fragment_s: float = 0.0,
    ) -> None:
        spec = CONTAINERS[options.container]
        self._probe = probe
        self._rate_factor = rate_factor
        self._options = options
        self._encoder = choose_encoder(options, hardware)
        self._color = output_color(probe.color)
        self._segment_count = segments
        self._threads = threads
        self._sink = sink if isinstance(sink, str) else _DiscardableSink(sink)
        self._out = av.open(
            self._sink, "w", format=spec.format, options=muxer_options(spec, fragment_s), buffer_size=OUTPUT_WRITE_BYTES
        )
        self._templates = av.open(str(source), metadata_errors="ignore")
        self._video: av.video.stream.VideoStream | None = None
        self._segments: SegmentEncoders | None = None
        self._copied: dict[int, av.stream.Stream] = {}
        self._pending: list[CopiedPacket] = []
        self._last_pts: int | None = None
        self._muxer: MuxThread | None = None
        self.frames = 0
        self.encode_s = 0.0  # time in the encoder's calls (waiting for its threads included)
        self.mux_s = 0.0  # time handing packets to the mux thread (waiting while its queue is full)

    @property
    def encoder(self) -> str:
        return self._encoder.name

    def write_frame(self, frame: av.VideoFrame) -> None:
        """Encode one frame (in presentation order) and mux what the encoder gives back."""
        video = self._video or self._start(frame.width, frame.height)
        frame.pts = self._next_pts(frame.pts)
        frame.time_base = video.codec_context.time_base
        started = time.perf_counter()
        packets = self._segments.submit(frame) if self._segments is not None else video.encode(frame)
        encoded = time.perf_counter()
        self._submit_video(packets)
        self.mux_s += time.perf_counter() - encoded
        self.encode_s += encoded - started
        self.frames += 1

    def write_packet(self, item: CopiedPacket) -> None:
        """Mux a packet of a copied stream, unchanged (its timestamps are rescaled, not altered)."""
        if self._video is None:
            self._pending.append(item)
            return
        item.packet.stream = self._copied[item.stream_index]
        self._submit([item.packet])

    def close(self) -> None:
        """Flush the encoder and finish the file (the last fragment and the trailer)."""
        try:
            if self._segments is not None:
                self._submit_video(self._segments.finish())
            elif self._video is not None:
                self._submit_video(self._video.encode(None))
            if self._muxer is not None:
                self._muxer.finish()
            self._out.close()
        finally:
            self._templates.close()
            self._release()

    def abort(self) -> None:
        """Release everything without finishing the file (after a failure)."""
        if self._muxer is not None:
            self._muxer.stop()
        if self._segments is not None:
            self._segments.close()
        if isinstance(self._sink, _DiscardableSink):
            self._sink.discarding = True
        for container in (self._out, self._templates):
            try:
                container.close()
            except Exception:  # already failing: the first error is the one reported
                log.debug("closing a video container after a failure failed", exc_info=True)
        self._release()

    def _release(self) -> None:
        """Let the encoder go now: libx264 keeps its threads and, at 4K, hundreds of MB of frames
        until its context is freed. The mux thread and segment encoders call back into this
        writer (a reference cycle), and after a failure PyAV does not free an encoder that never
        delivered a packet, so without this the encoders of finished videos piled up until the
        garbage collector's next full pass (tests/video/test_pipeline.py)."""
        self._muxer = None
        self._segments = None
        self._video = None
        self._copied.clear()

    def _submit_video(self, packets: list[av.Packet[Any]]) -> None:
        for packet in packets:
            packet.stream = self._video  # segment encoders' packets have none yet
        self._submit(packets)

    def _submit(self, packets: list[av.Packet[Any]]) -> None:
        """Hand packets to the mux thread (which muxes them in this order)."""
        assert self._muxer is not None
        self._muxer.submit(packets)

    def _mux(self, packets: Sequence[av.Packet[Any]]) -> None:
        """On the mux thread."""
        for packet in packets:
            self._out.mux(packet)

    def _start(self, width: int, height: int) -> av.video.stream.VideoStream:
        video = self._add_video(width, height)
        for index in self._probe.copied_streams:
            self._copied[index] = self._out.add_stream_from_template(self._templates.streams[index])
        self._out.start_encoding()
        self._video = video
        if self._segment_count > 1:
            self._segments = SegmentEncoders(self._segment_context, self._segment_count, video.codec_context.gop_size)
        self._muxer = MuxThread(self._mux)
        for item in self._pending:
            self.write_packet(item)
        self._pending.clear()
        return video

    def _add_video(self, width: int, height: int) -> av.video.stream.VideoStream:
        video = self._out.add_stream(self._encoder.name, rate=self._rate, options=dict(self._encoder.options))
        assert isinstance(video, av.video.stream.VideoStream)
        video.time_base = self._time_base
        self._configure(video.codec_context, width, height)
        video.codec_context.thread_count = self._threads
        if self._probe.display_matrix is not None:
            video.set_display_matrix(list(self._probe.display_matrix))
        return video

    def _segment_context(self) -> VideoCodecContext:
        """A fresh encoder configured as the stream's own (same headers), with its share of the cores."""
        assert self._video is not None
        stream_context = self._video.codec_context
        context = av.CodecContext.create(self._encoder.name, "w")
        assert isinstance(context, VideoCodecContext)
        self._configure(context, stream_context.width, stream_context.height)
        context.options = dict(self._encoder.options)
        context.flags = stream_context.flags  # the global header flag the container asked for
        context.thread_count = max(1, (os.cpu_count() or 1) // self._segment_count)
        context.open()
        return context

    @property
    def _rate(self) -> Fraction:
        return (self._probe.frame_rate or Fraction(25)) * self._rate_factor

    @property
    def _time_base(self) -> Fraction:
        return self._probe.time_base / self._rate_factor

    def _configure(self, ctx: VideoCodecContext, width: int, height: int) -> None:
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = self._time_base
        ctx.framerate = self._rate
        ctx.thread_type = "AUTO"  # frame threads (as the ffmpeg command line), not PyAV's slice default
        ctx.gop_size = max(1, round(float(self._rate) * GOP_SECONDS))
        ctx.colorspace, ctx.color_range = self._color.space, self._color.range
        ctx.color_primaries, ctx.color_trc = self._color.primaries, self._color.trc
        if self._encoder.bit_rate is not None:
            ctx.bit_rate = self._encoder.bit_rate
        if self._options.codec == "h265" and self._options.container == "mp4":
            ctx.codec_tag = "hvc1"  # what browsers and Apple players expect for HEVC in MP4

    def _next_pts(self, pts: int | None) -> int:
        """The source timestamp, forced strictly increasing (encoders refuse repeats)."""
        if pts is None:
            step = 1 / (self._rate * self._time_base)
            pts = 0 if self._last_pts is None else self._last_pts + max(1, round(step))
        elif self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

"""The video pipeline, for any image-to-image filter: decode -> filter each frame -> encode -> bytes.

    reader thread            event loop (pump task)          writer thread   mux thread
    demux + decode + RGB --> frame_filter -> YUV   --->  encode  --->   mux  ---> chunks
    (copied packets pass through in file order)

By default the encoder and muxer run in a child process fed through shared memory (`ProcessWriter`);
optionally the demuxing, decoding and RGB conversion too (`ProcessReader`). Every arrow is a bounded
queue (`Channel`s, and the `VideoWriter`'s packet queue), and at most `frames_in_flight` frames are
between the reader and the writer, so memory stays flat however long the video is. Frames are
filtered concurrently (tiles of consecutive frames batch together in the model's scheduler) and
handed to the encoder in their original order. The 4:2:0 conversions run on the core's codec pool.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np
from prometheus_client import Counter, Gauge

from service import gc_pauses
from service.core import ServedModel, ServingCore
from service.errors import Cancelled, DeadlineExceeded, InferenceFailed, ServiceError
from service.media import decoder_process, encoder_process
from service.media.images import DecodedImage
from service.media.niceness import lower_this_thread
from service.media.process_reader import ProcessReader, ring_slots
from service.media.process_writer import ProcessWriter, RingFrame, RingHolder
from service.media.video import CopiedPacket, SourceFrame, VideoProbe, frame_to_rgb, probe_video, read_video
from service.media.video_encode import (
    VideoEncodeOptions,
    VideoWriter,
    check_copyable,
    output_color,
    to_encoder_frame,
    validate_options,
)
from service.pipelines.bridge import Channel, ChannelClosed, Worker
from service.pipelines.handoff import HandOff, Inbox
from service.pipelines.superres import upscale, upscale_on_device
from service.scheduling.records import RequestTicket

log = logging.getLogger(__name__)
T = TypeVar("T")

FrameFilter = Callable[[np.ndarray], Awaitable[Any]]
"""One video frame through a filter: HxWx3 uint8 RGB in, HxWx3 uint8 RGB out (any size, the
same for every frame of a video), as a numpy array or, from a GPU model, as a tensor on the GPU
(converted to 4:2:0 there: `video_encode.to_encoder_frame`)."""
Progress = Callable[[int], None]


@dataclass(frozen=True)
class TimedFrame:
    """An output frame of a `FrameStage`: the filtered picture (what a `FrameFilter` returns) and
    its pts in the output's time base (None: the encoder spaces it at the output frame rate)."""

    picture: Any
    pts: int | None


@dataclass(frozen=True)
class RgbFrame:
    """A decoded frame as a `FrameStage` gets it: HxWx3 uint8 RGB (converted on the reader thread,
    with the frame's own matrix and range) and its pts in the source's time base."""

    rgb: np.ndarray
    pts: int | None


class FrameStage(abc.ABC):
    """A filter that may change the frame rate: for each source frame, the output frames up to
    and including it (frame-rate multiplication: `service/pipelines/video_interpolate.py`).

    The output's time base is the source's / `rate_factor`, its frame rate the source's x
    `rate_factor`. A plain `FrameFilter` is the stage of one frame out per frame, same pts."""

    rate_factor: int = 1

    @abc.abstractmethod
    def __call__(self, frame: RgbFrame) -> Coroutine[Any, Any, list[TimedFrame]]:
        """Called once per source frame, in source order, from the pump (a stage may keep state
        across frames); the coroutines of up to `frames_in_flight` frames run concurrently."""


class _EachFrame(FrameStage):
    """A `FrameFilter` as a stage: the filter, the source's pts."""

    def __init__(self, frame_filter: FrameFilter) -> None:
        self._filter = frame_filter

    def __call__(self, frame: RgbFrame) -> Coroutine[Any, Any, list[TimedFrame]]:
        return self._run(frame)

    async def _run(self, frame: RgbFrame) -> list[TimedFrame]:
        return [TimedFrame(await self._filter(frame.rgb), frame.pts)]


FRAMES_IN_FLIGHT = Gauge("filters_video_frames_in_flight", "Video frames between decoder and encoder")
VIDEO_FRAMES = Counter("filters_video_frames_total", "Video frames filtered and handed to the encoder")
_OUTPUT_CHUNKS = 16
RAMP_FRAMES = 64  # the log says how much of the encoder's wait for frames came before this one


@dataclass(frozen=True)
class _End:
    """End of a channel's items."""


@dataclass(frozen=True)
class _Failure:
    """A stage failed: the error travels down the channels to whoever reads the output."""

    error: BaseException


END = _End()
Decoded = RgbFrame | CopiedPacket | _End | _Failure
EncoderFrame = av.VideoFrame | RingFrame  # a RingFrame for the encoder process
ToEncode = EncoderFrame | CopiedPacket | _End
Output = bytes | _End | _Failure


@dataclass(frozen=True)
class VideoFilter:
    """A filter as video requests need it: the model (admission, metrics) and, for a request's
    ticket, the per-frame filter. Each image-to-image filter makes one (`superres_video`, ...)."""

    served: ServedModel
    frames: Callable[[RequestTicket], FrameFilter | FrameStage]


def superres_video(core: ServingCore, served: ServedModel, tile: int | None) -> VideoFilter:
    """Superres on video: every frame through the same tiled `upscale()` as an image."""
    return VideoFilter(served, lambda ticket: superres_frames(core, served, tile, ticket))


def superres_frames(core: ServingCore, served: ServedModel, tile: int | None, ticket: RequestTicket) -> FrameFilter:
    """The superres filter for video frames: the same tiles and batcher as for images. A GPU
    model's frames stay on the GPU (`upscale_on_device`) unless FILTERS_GPU_ENCODE is off."""
    on_device = core.settings.gpu_encode and served.scheduler.pool.outputs_on_device

    async def run(rgb: np.ndarray) -> Any:
        image = DecodedImage(rgb, None, False, 8)
        if on_device:
            return await upscale_on_device(core, served, image, tile, ticket)
        return (await upscale(core, served, image, tile, ticket)).image.rgb

    return run


async def filter_video(
    core: ServingCore,
    frame_filter: FrameFilter | FrameStage,
    source_path: Path,
    options: VideoEncodeOptions,
    ticket: RequestTicket,
    *,
    probe: VideoProbe | None = None,
    progress: Progress | None = None,
) -> AsyncGenerator[bytes, None]:
    """Filter every frame of the video at `source_path`; yield the encoded output as it is muxed.

    The front ends' one entry point for video (HTTP streaming and jobs, gRPC streaming).
    - `frame_filter` is called once per frame, up to `settings.video.frames_in_flight` at once;
      its results are encoded in frame order. Audio and subtitle streams are copied unchanged.
      A `FrameStage` may give several frames per source frame and change the frame rate.
    - `options`: codec, container and rate control of the output. `probe`: the upload's probe if
      the caller already made one (else it is made here, and its errors raise before any bytes).
    - `ticket`: the request's deadline and cancellation; this generator sets `cancelled` when it
      stops early, so the frames' queued tiles are dropped. `progress(n)` is told the number of
      frames handed to the encoder so far.
    - Errors are `ServiceError`s, raised from the next iteration: before the first chunk they
      can still become a status; after it, the caller must make the failure visible (HTTP
      aborts the connection). Closing the generator early stops every stage and its threads:
      a caller that may stop reading early must close it (`async with contextlib.aclosing(...)`),
      or the pipeline runs on until the garbage collector finalises the generator.
    Chunks are pieces of a fragmented MP4 (or live Matroska/WebM) in file order.
    """
    validate_options(options)
    if probe is None:
        probe = await core.offload(probe_video, source_path, core.settings.video)
    check_copyable(probe, options)
    run = _VideoRun(core, frame_filter, source_path, probe, options, ticket, progress)
    try:
        while True:
            item = await run.output.get()
            if isinstance(item, _End):
                break
            if isinstance(item, _Failure):
                raise item.error
            yield item
        run.finished = True
    finally:
        await run.stop()


class _VideoRun:
    """The three stages of one video and the channels between them."""

    def __init__(
        self,
        core: ServingCore,
        frame_filter: FrameFilter | FrameStage,
        source: Path,
        probe: VideoProbe,
        options: VideoEncodeOptions,
        ticket: RequestTicket,
        progress: Progress | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.window = core.settings.video.frames_in_flight
        self.core, self.source, self.probe = core, source, probe
        self.stage = frame_filter if isinstance(frame_filter, FrameStage) else _EachFrame(frame_filter)
        self.options, self.ticket, self.progress = options, ticket, progress
        self.decoded: Inbox[Decoded] = Inbox(self.window)  # the loop is woken only when it waits
        self.to_encode: HandOff[ToEncode] = HandOff(self.window)  # the encoder thread's side kept light
        self.output: Channel[Output] = Channel(_OUTPUT_CHUNKS)
        self.finished = False
        self.timeline = _Timeline()
        self.waits = _Waits()
        self.frame_times = _FrameTimes()
        self.pump_window: _Window | None = None  # read (racily, for the log) by the writer thread
        self.collected = gc_pauses.totals()  # the collector's pauses during this video, for the log
        self._color = output_color(probe.color)
        # one encoder takes frames as they come; parallel segments queue whole GOPs, which must
        # not hold pinned memory (`device_yuv.i420_frame`)
        self._wrap = core.settings.video.encoder_segments == 1
        in_child = core.settings.video.encoder_process and core.settings.video.encoder_segments == 1
        in_child = in_child and encoder_process.available()
        self._rings = RingHolder(2 * self.window + 8) if in_child else None  # frames for the encoder process
        decoding_in_child = core.settings.video.decoder_process and decoder_process.available()
        self._decoder = (
            ProcessReader(source, probe, core.settings.video, ring_slots(self.window)) if decoding_in_child else None
        )
        self._reader = Worker("video-decode", self._read)
        self._writer = Worker("video-encode", self._write)
        self._pump = loop.create_task(self._run_pump())

    async def stop(self) -> None:
        """Stop every stage (at once if it is still running) and wait for the threads to end."""
        if not self.finished:
            self.ticket.cancelled = True
        self._pump.cancel()
        for channel in (self.decoded, self.to_encode, self.output):
            channel.close()  # before any await: a thread blocked on a channel leaves at once
        if self._rings is not None:
            self._rings.close()  # and a codec thread waiting for a ring slot
        if self._decoder is not None:
            self._decoder.close()  # and the reader thread waiting for the decoder process
        await asyncio.wait([self._pump])  # its own error, if any, already went down the output channel
        if not self._pump.cancelled():
            self._pump.exception()
        for worker in (self._reader, self._writer):
            await worker.ended()

    def _read(self) -> None:
        """Reader thread: decoded frames (as RGB: no trip to the codec pool and back through the
        event loop for it) and copied packets, in file order."""
        clock = _ReaderClock()
        try:
            # closed explicitly: a generator left suspended would keep the decoder (and its threads)
            # until the garbage collector finds it
            with contextlib.closing(self._source_items()) as items:
                for item in items:
                    clock.lap("decoding")
                    if isinstance(item, SourceFrame):
                        item = RgbFrame(frame_to_rgb(item.frame), item.frame.pts)
                        clock.lap("converting to RGB")
                    if isinstance(item, RgbFrame):
                        self.timeline.mark("decoded")
                    self.decoded.put_blocking(item)
                    clock.lap("waiting for room")
            self.decoded.put_blocking(END)
            log.info("video decoded: %s", clock)
        except ChannelClosed:
            return
        except BaseException as exc:
            with contextlib.suppress(ChannelClosed):
                self.decoded.put_blocking(_Failure(exc))

    def _source_items(self) -> Generator[SourceFrame | RgbFrame | CopiedPacket, None, None]:
        """The upload's frames and copied packets, in file order: decoded here, or already RGB from
        the decoder process."""
        if self._decoder is None:
            yield from read_video(self.source, self.probe, self.core.settings.video)
            return
        for item in self._decoder.items():
            yield item if isinstance(item, CopiedPacket) else RgbFrame(*item)

    def _write(self) -> None:
        """Writer thread: encode and mux; the muxer's bytes go to the output channel."""
        settings = self.core.settings.video
        writer: VideoWriter | ProcessWriter | None = None
        lower_this_thread(settings.encoder_niceness)  # and the encoder's threads, started from this one
        try:
            writer = self._open_writer()
            seconds, waited = self._encode_all(writer)
            writer.close()
            _log_encoder_thread(writer, seconds, waited, self.timeline, self.waits)
            log.info("video filtered: %s", self.frame_times)
            log.info("garbage collection during the video: %s", gc_pauses.totals().since(self.collected))
            self.output.put_blocking(END)
        except ChannelClosed:
            if writer is not None:
                writer.abort()
        except BaseException as exc:
            if writer is not None:
                writer.abort()
            with contextlib.suppress(ChannelClosed):
                self.output.put_blocking(_Failure(_service_error(exc, "encoding the video failed")))

    def _open_writer(self) -> VideoWriter | ProcessWriter:
        """The video's encoder and muxer: in this process, or in an encoder process fed by the ring."""
        settings, sink = self.core.settings.video, _ChannelSink(self.output, self.timeline)
        if self._rings is not None:
            return ProcessWriter(
                sink, self.source, self.probe, self.options, settings.hardware_codecs, self._rings,
                self._color, self.stage.rate_factor, settings.encoder_threads, settings.encoder_niceness,
                settings.fragment_s,
            )  # fmt: skip
        return VideoWriter(
            sink,
            self.source,
            self.probe,
            self.options,
            settings.hardware_codecs,
            settings.encoder_segments,
            rate_factor=self.stage.rate_factor,
            threads=settings.encoder_threads,
            fragment_s=settings.fragment_s,
        )

    def _encode_all(self, writer: VideoWriter | ProcessWriter) -> tuple[float, float]:
        """Encode frames and hand copied packets on until the end: the seconds from the first frame
        to the end, and how many of them the thread waited for frames."""
        started = waited = 0.0
        while True:
            asked = time.perf_counter()
            cause = self._starved_by() if started and self.to_encode.empty else None
            item = self.to_encode.get_blocking()
            if started:  # not before the first frame
                wait = time.perf_counter() - asked
                waited += wait
                self.waits.note(wait, writer.frames, cause)
            if isinstance(item, _End):
                break
            if isinstance(item, CopiedPacket):
                writer.write_packet(item)
            else:
                started = started or asked
                self.timeline.mark("at the encoder")
                if writer.frames == RAMP_FRAMES:
                    self.timeline.record(f"encoder's wait by frame {RAMP_FRAMES}", waited)
                if writer.frames >= RAMP_FRAMES and writer.frames & (writer.frames - 1) == 0:
                    self.timeline.mark(f"frame {writer.frames} at the encoder")  # 64, 128, 256, ...
                if isinstance(writer, ProcessWriter):
                    writer.write_frame(_as(RingFrame, item))
                else:
                    writer.write_frame(_as(av.VideoFrame, item))
        return (time.perf_counter() - started if started else 0.0), waited

    def _starved_by(self) -> str:
        """Why the encoder finds no frame waiting (a racy look from the writer thread, for the log):
        the frame it needs next is still being filtered, is finished but not yet handed over, or
        the decoder has fallen behind (the window has room and nothing is decoded)."""
        window = self.pump_window
        head = window.head() if window is not None else None
        if isinstance(head, asyncio.Task) and head.done():
            return "finished, not handed over"
        if window is not None and not window.full and self.decoded.empty:
            return "decoder behind"
        return "being filtered"

    async def _run_pump(self) -> None:
        window = _Window(self.window)
        self.pump_window = window
        try:
            async with asyncio.timeout_at(self.ticket.deadline):
                await self._pump_frames(window)
            await self.to_encode.put(END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.ticket.cancelled = True
            error = (
                DeadlineExceeded("the video's deadline passed before it was done")
                if isinstance(exc, TimeoutError)
                else _service_error(exc, "filtering the video failed")
            )
            await self.output.put(_Failure(error))
        finally:
            await window.cancel()

    async def _pump_frames(self, window: _Window) -> None:
        """Start each decoded frame's filtering; hand results to the writer in order."""
        while not isinstance(item := await self.decoded.get(), _End):
            if isinstance(item, _Failure):
                raise item.error
            if isinstance(item, RgbFrame):
                outputs = self.stage(item)  # in source order: a stage may keep state across frames
                task = asyncio.get_running_loop().create_task(self._process(outputs))
                task.add_done_callback(functools.partial(_close, outputs))
                window.add(task)
            else:
                window.add(item)
            await self._forward(window)
        await self._forward(window, until_empty=True)

    async def _forward(self, window: _Window, until_empty: bool = False) -> None:
        """Hand the window's finished heads to the writer, in order.

        It waits (for the head to finish, or for room in the writer's channel) only while the
        window is full or, with `until_empty`, until the window is empty; otherwise it returns as
        soon as it would wait, so the next frame starts first. (Forwarding every finished head
        into a full channel before starting another frame let a fast GPU's window drain while the
        encoder worked through the channel, then start a burst of frames that reached the encoder
        too late: the GPU idled half the time and libx264 ultrafast waited for frames.)"""
        while (head := window.head()) is not None:
            waiting = (isinstance(head, asyncio.Task) and not head.done()) or self.to_encode.full
            if waiting and not (until_empty or window.full):
                return
            item = await window.result(head) if isinstance(head, asyncio.Task) else head
            window.pop()
            if isinstance(item, CopiedPacket):
                await self.to_encode.put(item)
                continue
            for frame in item:
                self.timeline.mark("filtered")
                await self.to_encode.put(frame)
                VIDEO_FRAMES.inc()
            if self.progress is not None:
                self.progress(window.forwarded)  # source frames done (progress against the probe's count)

    async def _process(self, outputs: Coroutine[Any, Any, list[TimedFrame]]) -> list[EncoderFrame]:
        frames: list[EncoderFrame] = []
        started = time.perf_counter()
        pictures = await outputs
        filtered = time.perf_counter()
        for timed in pictures:
            frame = await self.core.offload(self._for_encoder, timed.picture)
            frame.pts = timed.pts
            frames.append(frame)
        self.frame_times.add(filtered - started, time.perf_counter() - filtered)
        return frames

    def _for_encoder(self, picture: Any) -> EncoderFrame:
        """On the codec pool: the encoder's 4:2:0 frame, in a ring slot for the encoder process."""
        if self._rings is not None and not isinstance(picture, np.ndarray):  # on the GPU: straight into a slot
            height, width = int(picture.shape[0]) & ~1, int(picture.shape[1]) & ~1
            return self._rings.put_device(picture[:height, :width], self._color)
        frame = to_encoder_frame(picture, self._color, self._wrap)
        return frame if self._rings is None else self._rings.put(frame)


class _Window:
    """Frames being filtered (and packets waiting behind them), in source order."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: deque[asyncio.Task[list[EncoderFrame]] | CopiedPacket] = deque()
        self._frames = 0
        self.forwarded = 0

    @property
    def full(self) -> bool:
        return self._frames >= self._size

    def add(self, item: asyncio.Task[list[EncoderFrame]] | CopiedPacket) -> None:
        self._items.append(item)
        if isinstance(item, asyncio.Task):
            self._frames += 1
            FRAMES_IN_FLIGHT.inc()

    def head(self) -> asyncio.Task[list[EncoderFrame]] | CopiedPacket | None:
        return self._items[0] if self._items else None

    async def result(self, task: asyncio.Task[list[EncoderFrame]]) -> list[EncoderFrame]:
        """The task's frames. If it was dropped because another frame of the video failed (the
        failure cancels the request's ticket), that frame's error is raised instead."""
        try:
            return await task
        except Cancelled:
            for other in self._items:
                if isinstance(other, asyncio.Task) and other.done() and not other.cancelled():
                    error = other.exception()
                    if error is not None and not isinstance(error, Cancelled):
                        raise error from None
            raise

    def pop(self) -> None:
        if isinstance(self._items.popleft(), asyncio.Task):
            self._frames -= 1
            self.forwarded += 1
            FRAMES_IN_FLIGHT.dec()

    async def cancel(self) -> None:
        """Cancel the frames still being filtered and wait for them to stop.

        The window is emptied before the wait: this runs while the pump is being cancelled,
        and a second cancellation may cut the wait short."""
        tasks = [t for t in self._items if isinstance(t, asyncio.Task)]
        for task in tasks:
            task.cancel()
            task.add_done_callback(_retrieve)
        FRAMES_IN_FLIGHT.dec(self._frames)
        self._items.clear()
        self._frames = 0
        await asyncio.gather(*tasks, return_exceptions=True)


class _Timeline:
    """When the first frame reached each stage, in seconds after the run started (for the log)."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.marks: dict[str, float] = {}

    def mark(self, stage: str) -> None:
        self.record(stage, time.perf_counter() - self._started)

    def record(self, stage: str, seconds: float) -> None:
        self.marks.setdefault(stage, seconds)

    def __str__(self) -> str:
        return ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in self.marks.items())


class _ReaderClock:
    """Where the reader thread's time went (for the log): seconds per step, between `lap`s."""

    def __init__(self) -> None:
        self._started = self._last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = self.seconds.get(step, 0.0) + now - self._last
        self._last = now

    def __str__(self) -> str:
        steps = ", ".join(f"{seconds:.2f} s {step}" for step, seconds in self.seconds.items())
        return f"{self._last - self._started:.2f} s on the reader thread: {steps}"


class _FrameTimes:
    """How long source frames took from the pump to the filter's answer, and then to the encoder's
    4:2:0 frames (means, for the log): with `frames_in_flight` frames at a time, their sum bounds
    the rate at frames in flight / (filter + 4:2:0)."""

    def __init__(self) -> None:
        self.frames = 0
        self.filter_s = self.convert_s = 0.0

    def add(self, filter_s: float, convert_s: float) -> None:
        self.frames += 1
        self.filter_s += filter_s
        self.convert_s += convert_s

    def __str__(self) -> str:
        count = max(1, self.frames)
        return (
            f"a frame took {self.filter_s / count * 1e3:.1f} ms in the filter and "
            f"{self.convert_s / count * 1e3:.1f} ms to 4:2:0 on average"
        )


class _Waits:
    """The encoder thread's waits for frames: how many were long, and the longest (for the log)."""

    LONG_S = 0.01

    def __init__(self) -> None:
        self.long = 0
        self.long_s = 0.0
        self.longest = (0.0, 0)  # seconds, frames encoded before it
        self.causes: dict[str, list[float]] = {}  # why the channel was empty -> [waits, seconds]

    def note(self, seconds: float, frame: int, cause: str | None) -> None:
        if seconds >= self.LONG_S:
            self.long += 1
            self.long_s += seconds
        self.longest = max(self.longest, (seconds, frame))
        if cause is not None:
            counted = self.causes.setdefault(cause, [0, 0.0])
            counted[0] += 1
            counted[1] += seconds

    def __str__(self) -> str:
        causes = "; ".join(f"{cause}: {int(n)} for {s:.2f} s" for cause, (n, s) in sorted(self.causes.items()))
        return (
            f"{self.long} waits of {self.LONG_S * 1e3:.0f} ms or more ({self.long_s:.2f} s), the longest "
            f"{self.longest[0] * 1e3:.0f} ms before frame {self.longest[1]}; the next frame was {causes or '-'}"
        )


class _ChannelSink:
    """The muxer's output (a `ByteSink`): every write becomes a chunk on the output channel."""

    def __init__(self, channel: Channel[Output], timeline: _Timeline) -> None:
        self._channel, self._timeline = channel, timeline
        self._written = 0

    def write(self, data: bytes) -> int:
        self._channel.put_blocking(bytes(data))
        self._written += len(data)
        self._timeline.mark("first bytes out")  # the container's header
        if self._written >= 2**20:
            self._timeline.mark("first MB out")  # most of the first fragment
        return len(data)


def _as(kind: type[T], item: object) -> T:
    """`item`, which the run made for this writer (a frame of the host, or in a ring slot)."""
    assert isinstance(item, kind)
    return item


def _close(outputs: Coroutine[Any, Any, Any], _: object) -> None:
    """A frame's stage coroutine is closed when its task ends: no warning if it never ran."""
    outputs.close()


def _retrieve(task: asyncio.Task[list[EncoderFrame]]) -> None:
    """Mark a dropped frame's error as seen (it is not the error the caller gets)."""
    if not task.cancelled():
        task.exception()


def _log_encoder_thread(
    writer: VideoWriter | ProcessWriter, seconds: float, waited: float, timeline: _Timeline, waits: _Waits
) -> None:
    """Where the encoder thread's time went, from its first frame to the end: a pipeline that
    feeds the encoder fast enough leaves it little time waiting for frames (and whether that
    time was a few stalls or many short gaps). The timeline says how long the first frame took
    to reach each stage (the start-up a streamed answer pays)."""
    log.info(
        "video encoded: %d frames in %.2f s (%.1f frames/s); the encoder thread waited %.2f s for frames "
        "(%s), spent %.2f s in the encoder and %.2f s handing packets to the muxer; first frame: %s",
        writer.frames, seconds, writer.frames / seconds if seconds else 0.0, waited, waits, writer.encode_s,
        writer.mux_s, timeline,
    )  # fmt: skip


def _service_error(exc: BaseException, what: str) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    log.error("%s", what, exc_info=exc)
    return InferenceFailed(f"{what}: {exc}")

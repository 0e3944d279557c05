"""Parallel encoding of consecutive segments (closed GOPs) of one video stream.

One encoder's frame threads stop scaling long before 16 cores are busy at 4K. Here `count`
encoders, each with its share of the threads, take consecutive segments of `length` frames in
turn; each segment starts with an IDR frame in a fresh encoder, so the segments are independent
and their packets, muxed in segment order, form one valid stream: the encoders are configured
identically, so their headers (SPS/PPS, the container's extradata) are the same bytes.

Memory: up to `count` segments of frames wait in the encoders' queues (at 3840x2160, 4:2:0, one
frame is 12 MB), which is why this is off by default (`FILTERS_VIDEO__ENCODER_SEGMENTS=1`).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
from av.video.codeccontext import VideoCodecContext

_END_SEGMENT = object()
_STOP = object()


@dataclass(eq=False)
class _Segment:
    """One segment's packets, complete when `done` is set (or failed with `error`)."""

    packets: list[av.Packet[Any]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class _Encoder:
    """One encoder thread: a fresh codec context per segment, frames from its own queue."""

    def __init__(self, make_context: Callable[[], VideoCodecContext], length: int, name: str) -> None:
        self._make_context = make_context
        self.inbox: queue.Queue[object] = queue.Queue(maxsize=length + 2)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        while (item := self.inbox.get()) is not _STOP:
            if isinstance(item, _Segment) and not self._encode(item):
                return

    def _encode(self, segment: _Segment) -> bool:
        """Encode one segment; False when told to stop in the middle of it."""
        try:
            context = self._make_context()
            while (frame := self.inbox.get()) is not _END_SEGMENT:
                if frame is _STOP:
                    return False
                assert isinstance(frame, av.VideoFrame)
                segment.packets.extend(context.encode(frame))
            segment.packets.extend(context.encode(None))
        except BaseException as exc:  # handed to the muxing thread, which raises it
            segment.error = exc
            while (rest := self.inbox.get()) is not _END_SEGMENT:
                if rest is _STOP:
                    return False
        finally:
            segment.done.set()
        return True


class SegmentEncoders:
    """Encodes a frame sequence as segments of `length` frames on `count` encoders at once.

    Blocking; one thread submits frames in presentation order and gets packets back in stream
    order (from `submit` as segments complete, and the rest from `finish`)."""

    def __init__(self, make_context: Callable[[], VideoCodecContext], count: int, length: int) -> None:
        self._length = max(1, length)
        self._encoders = [_Encoder(make_context, self._length, f"video-encode-{i}") for i in range(count)]
        self._pending: deque[_Segment] = deque()
        self._frames = 0
        self._closed = False

    def submit(self, frame: av.VideoFrame) -> list[av.Packet[Any]]:
        """Queue one frame (blocks while its encoder is a segment behind); packets now ready."""
        encoder = self._encoders[(self._frames // self._length) % len(self._encoders)]
        if self._frames % self._length == 0:
            self._pending.append(_Segment())
            encoder.inbox.put(self._pending[-1])
        encoder.inbox.put(frame)
        self._frames += 1
        if self._frames % self._length == 0:
            encoder.inbox.put(_END_SEGMENT)
        return self._ready(wait=False)

    def finish(self) -> list[av.Packet[Any]]:
        """End the last segment, wait for every encoder; the remaining packets in order."""
        if self._frames % self._length:
            self._encoders[(self._frames // self._length) % len(self._encoders)].inbox.put(_END_SEGMENT)
        packets = self._ready(wait=True)
        self.close()
        return packets

    def close(self) -> None:
        """Stop the encoder threads (after `finish`, or to abandon the work)."""
        if self._closed:
            return
        self._closed = True
        for encoder in self._encoders:
            with contextlib.suppress(queue.Empty):  # frames nobody will wait for any more
                while True:
                    encoder.inbox.get_nowait()
            encoder.inbox.put(_STOP)
        for encoder in self._encoders:
            encoder.join()

    def _ready(self, wait: bool) -> list[av.Packet[Any]]:
        packets: list[av.Packet[Any]] = []
        while self._pending and (wait or self._pending[0].done.is_set()):
            segment = self._pending[0]
            segment.done.wait()
            if segment.error is not None:
                raise segment.error
            packets.extend(segment.packets)
            self._pending.popleft()
        return packets

"""The server's side of the encoder process (`encoder_process.py`): a frame ring and a `VideoWriter` stand-in.

`FrameRing`: slots of one 4:2:0 frame in a `memfd` the child maps too. The codec pool copies each
frame into a free slot (`RingFrame` travels down the pipeline instead of the frame); the child gives
the slot back once its encoder has let go of the frame. Slots are 2 x frames in flight + 8: every
frame between the pump and the child holds one, so a codec thread waits for a slot only while the
child is that far behind.

`ProcessWriter` has `VideoWriter`'s interface for the writer thread (`write_frame`, `write_packet`,
`close`, `abort`, `frames`, `encode_s`, `mux_s`, `encoder`): it sends notices to the child, and a
receiver thread writes the child's output bytes to the sink and returns freed slots to the ring.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import queue
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from service.errors import InferenceFailed
from service.media import child_process, encoder_process
from service.media.device_yuv import (
    i420_on_host,
    plane_pixels,
    register_host_memory,
    split_planes,
    unregister_host_memory,
)
from service.media.video import ColorInfo, CopiedPacket, VideoProbe
from service.media.video_encode import ByteSink, VideoEncodeOptions

_CLOSED = -1
_VIDEO_NUMBERS = itertools.count(1)
_SLOT_ALIGN = 2 << 20


@dataclass
class RingFrame:
    """A frame in ring slot `slot`, as the pipeline hands it to the writer (pts set by the pump)."""

    slot: int
    width: int
    height: int
    pts: int | None = None


class FrameRing:
    """Slots of `width` x `height` 4:2:0 frames in a memfd (Linux), each starting on a 2 MiB
    boundary so that each can be registered with CUDA on its own when first used."""

    def __init__(self, slots: int, width: int, height: int) -> None:
        self.width, self.height, self.slots = width, height, slots
        self.slot_bytes = width * height * 3 // 2
        self.stride = -(-self.slot_bytes // _SLOT_ALIGN) * _SLOT_ALIGN
        self.size = slots * self.stride
        self.fd = os.memfd_create("filters-video-frames", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.size)
        self._map = mmap.mmap(self.fd, self.size)
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(slots):
            self._free.put(slot)
        self._memory = np.frombuffer(self._map, np.uint8)
        self._registered: set[int] = set()  # slots page-locked for CUDA
        self._downloads = threading.Condition()
        self._downloading = 0
        self._closed = False

    def offset(self, slot: int) -> int:
        return slot * self.stride

    def put(self, frame: av.VideoFrame) -> RingFrame:
        """Copy `frame` (yuv420p, this ring's size) into a free slot, waiting for one."""
        slot, target = self._take()
        planes = split_planes(target.reshape(self.height * 3 // 2, self.width), self.height, self.width)
        for plane, pixels in zip(frame.planes, planes, strict=True):
            np.copyto(pixels, plane_pixels(plane))
        return RingFrame(slot, self.width, self.height)

    def put_device(self, rgb: Any, color: ColorInfo) -> RingFrame:
        """Convert HxWx3 uint8 RGB on a GPU (this ring's size) to 4:2:0 there and download it
        straight into a free slot: DMA, the slot being registered with CUDA when first used
        (registering the whole ring at once delayed the first frame by ~0.2 s)."""
        slot, target = self._take()
        with self._downloads:
            if self._closed:
                raise InferenceFailed("the video's encoder process has ended")
            self._downloading += 1
        try:
            if slot not in self._registered and rgb.device.type == "cuda":
                whole = self._memory[self.offset(slot) : self.offset(slot) + self.stride]
                if register_host_memory(whole):
                    self._registered.add(slot)
            i420_on_host(rgb, color.space, color.range == 2, target)
        finally:
            with self._downloads:
                self._downloading -= 1
                self._downloads.notify_all()
        return RingFrame(slot, self.width, self.height)

    def _take(self) -> tuple[int, np.ndarray]:
        slot = self._free.get()
        if slot == _CLOSED:
            self._free.put(_CLOSED)
            raise InferenceFailed("the video's encoder process has ended")
        return slot, self._memory[self.offset(slot) : self.offset(slot) + self.slot_bytes]

    def release(self, slot: int) -> None:
        self._free.put(slot)

    def close(self) -> None:
        """Wake codec threads waiting for a slot (they fail), let downloads under way end, unlock
        the registered slots; the memory goes with the last view."""
        self._free.put(_CLOSED)
        with self._downloads:
            self._closed = True
            self._downloads.wait_for(lambda: self._downloading == 0, timeout=10)
            for slot in self._registered:
                unregister_host_memory(self._memory[self.offset(slot) : self.offset(slot) + self.stride])
            self._registered.clear()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(BufferError):
            self._map.close()


    def whole(self) -> bool:
        """Whether every slot is free and the ring open: it can serve another video as it is."""
        with self._downloads:
            return not self._closed and self._downloading == 0 and self._free.qsize() == self.slots


class _IdleRings:
    """The ring of a video that ended well, kept for the next video of the same frame size: its
    slots stay registered with CUDA (registering 40 slots of 12 MiB, one by one as first used,
    slowed a video's first frames). One is kept: its memory stays page-locked meanwhile."""

    KEPT = 1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rings: list[FrameRing] = []

    def take(self, slots: int, width: int, height: int) -> FrameRing | None:
        with self._lock:
            for ring in self._rings:
                if (ring.slots, ring.width, ring.height) == (slots, width, height):
                    self._rings.remove(ring)
                    return ring
        return None

    def kept(self) -> list[FrameRing]:
        with self._lock:
            return list(self._rings)

    def keep_none(self) -> None:
        """Close the rings kept (at server stop; tests)."""
        with self._lock:
            rings, self._rings = self._rings, []
        for ring in rings:
            ring.close()

    def keep(self, ring: FrameRing) -> None:
        with self._lock:
            self._rings.append(ring)
            dropped = self._rings[: -self.KEPT]
            self._rings = self._rings[-self.KEPT :]
        for old in dropped:
            old.close()


IDLE_RINGS = _IdleRings()


class RingHolder:
    """The video's ring, made by the first frame (its size is known only then), or the ring a
    previous video of that size left (`IDLE_RINGS`)."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._lock = threading.Lock()
        self.ring: FrameRing | None = None

    def put(self, frame: av.VideoFrame) -> RingFrame:
        return self._ring(frame.width, frame.height).put(frame)

    def put_device(self, rgb: Any, color: ColorInfo) -> RingFrame:
        return self._ring(int(rgb.shape[1]), int(rgb.shape[0])).put_device(rgb, color)

    def _ring(self, width: int, height: int) -> FrameRing:
        with self._lock:
            if self.ring is None:
                self.ring = IDLE_RINGS.take(self._slots, width, height) or FrameRing(self._slots, width, height)
            return self.ring

    def finish(self) -> None:
        """The video ended well: its ring is kept for the next video if every slot came back."""
        with self._lock:
            ring, self.ring = self.ring, None
        if ring is not None and ring.whole():
            IDLE_RINGS.keep(ring)
        elif ring is not None:
            ring.close()

    def close(self) -> None:
        with self._lock:
            if self.ring is not None:
                self.ring.close()


class ProcessWriter:
    """`VideoWriter` in the encoder process: same calls, from the writer thread."""

    def __init__(
        self,
        sink: ByteSink,
        source: Path,
        probe: VideoProbe,
        options: VideoEncodeOptions,
        hardware: bool,
        rings: RingHolder,
        color: ColorInfo,
        rate_factor: int = 1,
        threads: int = 0,
        niceness: int = 0,
        fragment_s: float = 0.0,
    ) -> None:
        self._sink, self._rings = sink, rings
        self._process, self._sock = encoder_process.SPARES.take()
        self._video = next(_VIDEO_NUMBERS)  # the child's slot notices carry it: a late one is ignored
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._error: str | None = None
        self._ring_sent = False
        self.frames = 0
        self.encode_s = self.mux_s = 0.0
        self.encoder = "libx264"
        config = {
            "source": source, "probe": probe, "options": options, "hardware": hardware,
            "rate_factor": rate_factor, "threads": threads, "niceness": niceness, "color": color,
            "fragment_s": fragment_s,
            "video": self._video,
        }  # fmt: skip
        self._send(("start", config))
        self._receiver = threading.Thread(target=self._receive, name="video-encode-receive", daemon=True)
        self._receiver.start()

    def write_frame(self, frame: RingFrame) -> None:
        ring = self._rings.ring
        assert ring is not None
        if not self._ring_sent:
            self._send(("ring", ring.size))
            socket.send_fds(self._sock, [b"r"], [ring.fd])
            self._ring_sent = True
        self._send(("frame", frame.slot, ring.offset(frame.slot), frame.width, frame.height, frame.pts))
        self.frames += 1

    def write_packet(self, item: CopiedPacket) -> None:
        self._send(("packet", encoder_process.PacketNotice.of(item.stream_index, item.packet)))

    def close(self) -> None:
        """Flush and finish the file in the child; raises its failure."""
        self._send(("close",))
        self._done.wait()
        self._receiver.join()
        if self._error is not None:
            self._end()
            raise InferenceFailed(f"the video encoder failed: {self._error}")
        self._rings.finish()  # every frame is back from the child: the ring may serve the next video
        encoder_process.SPARES.give_back((self._process, self._sock))  # warm: its next video starts faster

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # a child that failed or is gone needs no notice
            self._send(("abort",))
        self._end()

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._error is not None:
            raise InferenceFailed(f"the video encoder failed: {self._error}")
        try:
            child_process.send(self._sock, message, self._lock)
        except OSError as exc:
            raise InferenceFailed(f"the video encoder process is gone: {exc}") from None

    def _receive(self) -> None:
        try:
            while (message := child_process.receive(self._sock)) is not None:
                kind = message[0]
                if kind == "bytes":
                    self._sink.write(message[1])
                elif kind == "free":
                    if self._rings.ring is not None and message[2] == self._video:
                        self._rings.ring.release(message[1])
                elif kind == "done":
                    _, self.frames, self.encode_s, self.mux_s, self.encoder = message
                    return
                else:  # "error"
                    self._error = f"{message[1]}: {message[2]}"
                    return
            self._error = self._error or "the encoder process ended early"
        except Exception as exc:  # the sink refused (the client left): the child is stopped by _end
            self._error = self._error or f"{type(exc).__name__}: {exc}"
        finally:
            if self._error is not None:
                self._rings.close()  # codec threads waiting for a slot fail instead of waiting forever
            self._done.set()

    def _end(self) -> None:
        child_process.end((self._process, self._sock))
        self._rings.close()

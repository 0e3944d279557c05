"""The video encoder in a process of its own: libx264 fed by a thread that shares no GIL with the server.

In the server's process the encoder's feeding thread must take the GIL back from the event loop, the
codec pool and the model slots after every call into libx264; on the H200 that cost ~10 % of
libx264 ultrafast's 4K rate (docs/video.md, "How it runs"). With `FILTERS_VIDEO__ENCODER_PROCESS`
the server's writer thread hands frames to a child process instead (`process_writer.ProcessWriter`).
Measured on the H200 (bench/results/video_h200_encoder_process_ab3_60s.md): after the first
fragment, 97 % of libx264 alone at ultrafast, against 83-86 % in-process.

- frames travel through a ring of 4:2:0 slots in a `memfd` that both processes map. On a GPU the
  codec pool's download fills a slot directly (each slot is registered with CUDA when first used);
  the child wraps the slot as the encoder's frame without copying it, and gives it back when
  libavcodec lets go of the frame;
- everything else (the video's settings, frame and packet notices, the muxed output, errors) goes
  over a socket pair (`child_process.send`);
- the child runs the same `VideoWriter` (encoder, muxer thread, copied audio), one video after
  another. The parent keeps one child started ahead (`SPARES`; the first at server start) and up to
  two warm ones: a fresh process faults in libx264's ~0.5 GB of 4K buffers during its first frames,
  which slowed the start of each video by a few hundred ms.

Run as `python -m service.media.encoder_process FD`, FD being the child's end of the socket pair.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import mmap
import os
import socket
import threading
import weakref
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from service.media import child_process
from service.media.child_process import SpareChildren, receive, send

log = logging.getLogger(__name__)


@functools.cache
def available() -> bool:
    """Whether this platform can run the encoder process (Linux: memfd and passing descriptors); where
    it cannot, videos use the in-process encoder and this says so once in the log."""
    if child_process.platform_supported():
        return True
    log.warning("FILTERS_VIDEO__ENCODER_PROCESS needs Linux (memfd_create); videos encode in-process")
    return False


@dataclass(frozen=True)
class PacketNotice:
    """A copied stream's packet as bytes and timing (PyAV packets do not pickle)."""

    stream_index: int
    data: bytes
    pts: int | None
    dts: int | None
    duration: int | None
    time_base: Fraction | None
    keyframe: bool

    @staticmethod
    def of(stream_index: int, packet: av.Packet[Any]) -> PacketNotice:
        return PacketNotice(
            stream_index, bytes(packet), packet.pts, packet.dts, packet.duration, packet.time_base,
            packet.is_keyframe,
        )  # fmt: skip

    def packet(self) -> av.Packet[Any]:
        packet = av.Packet(self.data)
        packet.pts, packet.dts = self.pts, self.dts
        if self.duration is not None:
            packet.duration = self.duration
        if self.time_base is not None:
            packet.time_base = self.time_base
        packet.is_keyframe = self.keyframe
        return packet


SPARES = SpareChildren("service.media.encoder_process")


def serve(sock: socket.socket) -> None:
    """The child: videos one after another (frames and packets in, muxed bytes out), until the
    parent closes the socket or a video does not end well."""
    from service.media.niceness import lower_this_thread

    lowered = False
    while (start := receive(sock)) is not None:
        config: dict[str, Any] = start[1]
        niceness = config.pop("niceness")
        if not lowered:  # nice steps are relative: once per process
            lower_this_thread(niceness)
            lowered = True
        if not _serve_video(sock, config):
            return


def _serve_video(sock: socket.socket, config: dict[str, Any]) -> bool:
    """One video; whether it ended well (the child can take another)."""
    from service.media.video import CopiedPacket
    from service.media.video_encode import VideoWriter, tag_frame

    lock = threading.RLock()  # a slot's `free` may run wherever libavcodec lets go of the frame
    color, video = config.pop("color"), config.pop("video")
    writer: VideoWriter | None = None
    ring: mmap.mmap | None = None
    try:
        writer = VideoWriter(_SocketSink(sock, lock), **config)
        while (message := receive(sock)) is not None:
            kind = message[0]
            if kind == "ring":
                _, size = message
                _, fds, _, _ = socket.recv_fds(sock, 1, 1)
                ring = mmap.mmap(fds[0], size)
                os.close(fds[0])
            elif kind == "frame":
                _, slot, offset, width, height, pts = message
                assert ring is not None
                free = functools.partial(send, sock, ("free", slot, video), lock)
                frame = _wrap_slot(ring, offset, width, height, free)
                frame.pts = pts
                writer.write_frame(tag_frame(frame, color))
                del frame
            elif kind == "packet":
                notice: PacketNotice = message[1]
                writer.write_packet(CopiedPacket(notice.stream_index, notice.packet()))
            elif kind == "close":
                writer.close()
                done = ("done", writer.frames, writer.encode_s, writer.mux_s, writer.encoder)
                writer = None
                gc.collect()  # frames in a cycle, if any, give their slots back before "done"
                if ring is not None:
                    with contextlib.suppress(BufferError):
                        ring.close()
                send(sock, done, lock)
                return True
            else:  # "abort"
                break
        writer.abort()
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        with contextlib.suppress(OSError):
            send(sock, ("error", type(exc).__name__, str(exc)), lock)
    return False


def _wrap_slot(ring: mmap.mmap, offset: int, width: int, height: int, free: Any) -> av.VideoFrame:
    """The encoder's frame over the ring slot at `offset` (I420); `free()` runs once libavcodec and
    this process have let go of it. Heights of 4k + 2 rows are copied (PyAV cannot wrap them)."""
    array = np.frombuffer(ring, np.uint8, width * height * 3 // 2, offset).reshape(height * 3 // 2, width)
    if height % 4 == 0:
        weakref.finalize(array, free)
        return av.VideoFrame.from_numpy_buffer(array, format="yuv420p")
    from service.media.device_yuv import plane_pixels, split_planes

    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, pixels in zip(frame.planes, split_planes(array, height, width), strict=True):
        np.copyto(plane_pixels(plane), pixels)
    del array
    free()
    return frame


class _SocketSink:
    """The child's muxer output: every write becomes a `bytes` message to the parent."""

    def __init__(self, sock: socket.socket, lock: contextlib.AbstractContextManager[Any]) -> None:
        self._sock, self._lock = sock, lock

    def write(self, data: bytes) -> int:
        send(self._sock, ("bytes", bytes(data)), self._lock)
        return len(data)


if __name__ == "__main__":
    child_process.main(serve)

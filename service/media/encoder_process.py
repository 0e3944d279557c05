"""The video encoder in a process of its own: libx264 fed by a thread that shares no GIL with the server.

In the server's process the encoder's feeding thread must take the GIL back from the event loop, the
codec pool and the model slots after every call into libx264; on the H200 that cost ~10 % of
libx264 ultrafast's 4K rate (docs/video.md, "How it runs"). With `FILTERS_VIDEO__ENCODER_PROCESS`
the server's writer thread hands frames to a child process instead (`process_writer.ProcessWriter`):

- frames travel through a ring of 4:2:0 slots in a `memfd` that both processes map (not POSIX shared
  memory: a pod's `/dev/shm` is 64 MB by default); the child wraps a slot as the encoder's frame
  without copying it, and gives the slot back when libavcodec lets go of the frame;
- everything else (the video's settings, frame and packet notices, the muxed output, errors) goes
  over a socket pair as length-prefixed pickles of tuples;
- the child runs the same `VideoWriter` (encoder, muxer thread, copied audio) and ends with the video.
  The parent keeps one child started ahead (`SpareEncoders`): starting Python and importing PyAV takes
  ~0.4 s, which would otherwise delay every video's first frame.

Run as `python -m service.media.encoder_process FD`, FD being the child's end of the socket pair.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import pickle
import socket
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

_LENGTH = 4


def send(
    sock: socket.socket, message: tuple[Any, ...], lock: contextlib.AbstractContextManager[Any] | None = None
) -> None:
    """One message: its pickle's length (4 bytes, little-endian), then the pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock or contextlib.nullcontext():
        sock.sendall(len(data).to_bytes(_LENGTH, "little") + data)


def receive(sock: socket.socket) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the stream (the other side closed)."""
    header = _read_exactly(sock, _LENGTH)
    if header is None:
        return None
    body = _read_exactly(sock, int.from_bytes(header, "little"))
    if body is None:
        return None
    message: tuple[Any, ...] = pickle.loads(body)
    return message


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        count = sock.recv_into(view[got:])
        if count == 0:
            return None
        got += count
    return bytes(buffer)


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


class SpareEncoders:
    """Child processes started ahead, one at a time: `take()` returns the waiting one (or starts one)
    and starts the next. Children end when their socket closes, so none outlives the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: tuple[subprocess.Popen[bytes], socket.socket] | None = None

    def take(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        with self._lock:
            child = self._spare if self._spare is not None and self._spare[0].poll() is None else None
            self._spare = None
            child = child or _start_child()
            self._spare = _start_child()
        return child

    def close(self) -> None:
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare[1].close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                spare[0].wait(5)


def _start_child() -> tuple[subprocess.Popen[bytes], socket.socket]:
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-m", "service.media.encoder_process", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        cwd=Path(__file__).resolve().parents[2],
    )
    theirs.close()
    return process, ours


SPARES = SpareEncoders()


def serve(sock: socket.socket) -> None:
    """The child: one video's frames and packets in, its muxed bytes out, then exit."""
    from service.media.niceness import lower_this_thread
    from service.media.video import CopiedPacket
    from service.media.video_encode import VideoWriter, tag_frame

    lock = threading.RLock()  # a slot's `free` may run wherever libavcodec lets go of the frame
    start = receive(sock)
    if start is None:
        return
    config: dict[str, Any] = start[1]
    lower_this_thread(config.pop("niceness"))
    color = config.pop("color")
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
                frame = _wrap_slot(ring, offset, width, height, functools.partial(send, sock, ("free", slot), lock))
                frame.pts = pts
                writer.write_frame(tag_frame(frame, color))
                del frame
            elif kind == "packet":
                notice: PacketNotice = message[1]
                writer.write_packet(CopiedPacket(notice.stream_index, notice.packet()))
            elif kind == "close":
                writer.close()
                send(sock, ("done", writer.frames, writer.encode_s, writer.mux_s, writer.encoder), lock)
                return
            else:  # "abort"
                break
        writer.abort()
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        with contextlib.suppress(OSError):
            send(sock, ("error", type(exc).__name__, str(exc)), lock)


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


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(sock)
    finally:
        sock.close()


if __name__ == "__main__":
    main()

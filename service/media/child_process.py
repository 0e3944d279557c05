"""Child processes of the video pipeline (`encoder_process`, `decoder_process`): the messages between
them and the server, and the children kept ready.

- Messages go over a socket pair as length-prefixed pickles of tuples; frames go through a `memfd`
  ring both processes map (not POSIX shared memory: a pod's `/dev/shm` is 64 MB by default).
- `SpareChildren` keeps one child started ahead (starting Python and importing PyAV takes ~0.4 s,
  which would otherwise delay a video's first frame) and up to two warm ones whose video ended well.
  A child whose video failed or was abandoned is stopped. Children end when their socket closes, so
  none outlives the server.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

_LENGTH = 4
Child = tuple[subprocess.Popen[bytes], socket.socket]
_WARM_KEPT = 2  # children kept after a video, for the next ones


def platform_supported() -> bool:
    """Whether this platform can run the pipeline's children (Linux: memfd and passing descriptors)."""
    return hasattr(os, "memfd_create") and hasattr(socket, "send_fds")


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
    # Both ends of the socket pair are this server and its own child (socket.socketpair): trusted.
    message: tuple[Any, ...] = pickle.loads(body)  # nosec B301
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


class SpareChildren:
    """Children running `python -m <module> FD`, ready for a video. `take()` returns a warm one (it
    has served a video: its heap holds the codec's buffers, so its first frames are not slowed by
    page faults) or else the one started ahead (starting the next); `give_back()` keeps a child
    whose video ended well."""

    def __init__(self, module: str) -> None:
        self._module = module
        self._lock = threading.Lock()
        self._spare: Child | None = None
        self._warm: list[Child] = []

    def take(self) -> Child:
        with self._lock:
            while self._warm:
                child = self._warm.pop()
                if child[0].poll() is None:
                    return child
                child[1].close()
            spare = self._spare if self._spare is not None and self._spare[0].poll() is None else None
            self._spare = None
            spare = spare or self._start()
            self._spare = self._start()
        return spare

    def prepare(self) -> None:
        """Start a child ahead now (at server start), so that the first video does not wait ~0.4 s
        for Python and PyAV to start in it."""
        with self._lock:
            if self._warm or (self._spare is not None and self._spare[0].poll() is None):
                return
            self._spare = self._start()

    def give_back(self, child: Child) -> None:
        with self._lock:
            if len(self._warm) < _WARM_KEPT and child[0].poll() is None:
                self._warm.append(child)
                return
        stop(child)

    def children(self) -> list[Child]:
        """Every child kept and alive (warm ones and the spare)."""
        with self._lock:
            kept = [*self._warm, *([self._spare] if self._spare is not None else [])]
        return [child for child in kept if child[0].poll() is None]

    def close(self) -> None:
        with self._lock:
            kept = [*self._warm, *([self._spare] if self._spare is not None else [])]
            self._warm, self._spare = [], None
        for child in kept:
            stop(child)

    def _start(self) -> Child:
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-m", self._module, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            cwd=Path(__file__).resolve().parents[2],
        )
        theirs.close()
        return process, ours


def end(child: Child) -> None:
    """End a child whose video failed or was abandoned: shut its socket down (a thread of ours
    blocked reading it returns at once), close it, and wait for the child (killed after 10 s)."""
    process, sock = child
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop(child: Child) -> None:
    """Close the child's socket (it sees the end of its input and exits) and wait for it a little."""
    child[1].close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child[0].wait(5)


def main(serve: Any) -> None:
    """A child's entry point: `serve` the socket whose descriptor is the first argument."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(sock)
    finally:
        sock.close()

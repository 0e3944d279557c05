"""The server's side of the decoder process (`decoder_process.py`): the RGB ring and the items it reads.

`ProcessReader.items()` yields what the in-process reader makes of `read_video` (each frame as RGB
with its pts, copied packets) in file order, the frames' RGB being views of ring slots that the child
filled. A slot goes back to the child when the last view of its frame is gone (the model has taken
the pixels), so the ring needs about as many slots as frames can be alive between the reader and the
encoder: 2 x frames in flight + 8 (`ring_slots`).
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import socket
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from service import errors
from service.errors import InferenceFailed, ServiceError
from service.media import child_process, decoder_process
from service.media.video import CopiedPacket, VideoProbe
from service.settings import VideoSettings

_VIDEO_NUMBERS = itertools.count(1)
_PAGE = mmap.PAGESIZE


def ring_slots(frames_in_flight: int) -> int:
    """RGB slots for a video: every frame between the reader and the end of its filtering holds one."""
    return 2 * frames_in_flight + 8


class ProcessReader:
    """A video's frames (as RGB, with their pts) and copied packets, from a decoder process."""

    def __init__(self, source: Path, probe: VideoProbe, settings: VideoSettings, slots: int) -> None:
        self._process, self._sock = decoder_process.SPARES.take()
        self._video = next(_VIDEO_NUMBERS)
        self._lock = threading.RLock()  # frees are sent from whichever thread drops a frame
        self._sending_frees = True  # until the video ends: the child no longer reads them after
        self._ended = False
        self._shape = (probe.height, probe.width, 3)
        self._stride = -(-probe.height * probe.width * 3 // _PAGE) * _PAGE
        fd = os.memfd_create("filters-video-rgb", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, slots * self._stride)
            self._map = mmap.mmap(fd, slots * self._stride)  # freed with the last view of a slot
            config = {
                "source": source, "probe": probe, "settings": settings, "video": self._video, "slots": slots,
                "height": probe.height, "width": probe.width, "stride": self._stride,
                "ring_bytes": slots * self._stride,
            }  # fmt: skip
            self._send(("start", config))
            socket.send_fds(self._sock, [b"r"], [fd])
        except OSError as exc:
            self._end()
            raise InferenceFailed(f"the video decoder process is gone: {exc}") from None
        finally:
            os.close(fd)

    def items(self) -> Iterator[tuple[np.ndarray, int | None] | CopiedPacket]:
        """(RGB, pts) per frame and the copied packets, in file order; raises the upload's errors
        (`InvalidInput`, `PayloadTooLarge`, ...) as the in-process reader would."""
        while True:
            try:
                message = child_process.receive(self._sock)
            except OSError:
                message = None
            if message is None:
                self._end()
                raise InferenceFailed("the video decoder process ended early")
            kind = message[0]
            if kind == "frame":
                yield self._slot(message[1]), message[2]
            elif kind == "inline":
                yield message[1], message[2]
            elif kind == "packet":
                yield CopiedPacket(message[1].stream_index, message[1].packet())
            else:  # "end" or "error": the child is free for another video either way
                self._finish()
                if kind == "error":
                    raise _error(message[1], message[2])
                return

    def close(self) -> None:
        """Stop the child unless the video ended (from any thread: a reader blocked on the child returns)."""
        if not self._ended:
            self._end()

    def _slot(self, slot: int) -> np.ndarray:
        size = self._shape[0] * self._shape[1] * 3
        # an array over the mmap itself: every view made of it (reshapes, crops, torch.from_numpy) has it
        # as its base, so it dies with the last of them
        owner = np.frombuffer(self._map, np.uint8, size, slot * self._stride)
        weakref.finalize(owner, self._free, slot)
        return owner.reshape(self._shape)

    def _free(self, slot: int) -> None:
        with self._lock:
            if self._sending_frees:
                with contextlib.suppress(OSError):
                    child_process.send(self._sock, ("free", self._video, slot))

    def _finish(self) -> None:
        with self._lock:
            self._sending_frees = False
            self._ended = True
            try:
                child_process.send(self._sock, ("close",))
            except OSError:
                self._end()
                return
        decoder_process.SPARES.give_back((self._process, self._sock))

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            child_process.send(self._sock, message)

    def _end(self) -> None:
        with self._lock:
            self._sending_frees = False
            self._ended = True
        child_process.end((self._process, self._sock))


def _error(kind: str, message: str) -> ServiceError:
    """The child's error as the server's own class (the upload's fault: 4xx), else a 500."""
    found = getattr(errors, kind, None)
    if isinstance(found, type) and issubclass(found, ServiceError):
        return found(message)
    return InferenceFailed(f"decoding the video failed: {kind}: {message}")

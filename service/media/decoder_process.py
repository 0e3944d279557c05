"""The video decoder in a process of its own: demuxing, decoding and the RGB conversion, off the server's GIL.

With the encoder in its own process, the server's reader thread became the pipeline's limit on the
H200: per 1440 frames of 960x540 it spent 3.5-4.2 s decoding and 1.2-1.3 s converting to RGB, against
1.6 s and 0.3 s on an idle host; every step of it waits for the GIL that the event loop, the codec
pool and the model slots hold in turn (bench/results/video_h200_decoder_process_60s.md). With
`FILTERS_VIDEO__DECODER_PROCESS` a child does that work (`process_reader.ProcessReader` is the
server's side), using the same `read_video` and `frame_to_rgb`:

- the parent sends ("start", config) and then the descriptor of a `memfd` ring of RGB slots; the
  child writes each frame's RGB into a free slot and sends ("frame", slot, pts). A frame of another
  size than the probe's travels in the message itself ("inline", rgb, pts); copied packets as
  ("packet", PacketNotice); then ("end",), or ("error", kind, message) with the error's class name;
- the parent gives a slot back with ("free", video, slot) once nothing of it uses that frame any
  more, and ends the video with ("close",) after the end: the child then waits for the next video.
  ("stop",), or the end of the stream, abandons the video and ends the child.

Run as `python -m service.media.decoder_process FD`, FD being the child's end of the socket pair.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import mmap
import os
import queue
import socket
import threading
from typing import Any

import numpy as np

from service.media import child_process
from service.media.child_process import SpareChildren, receive, send
from service.media.encoder_process import PacketNotice

log = logging.getLogger(__name__)
SPARES = SpareChildren("service.media.decoder_process")


@functools.cache
def available() -> bool:
    """Whether this platform can run the decoder process; where it cannot, videos are decoded in the
    server's process and this says so once in the log."""
    if child_process.platform_supported():
        return True
    log.warning("FILTERS_VIDEO__DECODER_PROCESS needs Linux (memfd_create); videos decode in-process")
    return False


def serve(sock: socket.socket) -> None:
    """The child: videos one after another, until the parent stops one or closes the socket."""
    lock = threading.RLock()
    while (start := receive(sock)) is not None:
        if not _serve_video(sock, start[1], lock):
            return


def _serve_video(sock: socket.socket, config: dict[str, Any], lock: threading.RLock) -> bool:
    """One video; whether the parent ended it with "close" (the child can take another)."""
    from service.media.video import SourceFrame, frame_to_rgb, read_video

    _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    ring = mmap.mmap(fds[0], config["ring_bytes"])
    os.close(fds[0])
    memory = np.frombuffer(ring, np.uint8)
    height, width, stride = config["height"], config["width"], config["stride"]
    frees = _Frees(sock, config["video"], config["slots"])
    try:
        with contextlib.closing(read_video(config["source"], config["probe"], config["settings"])) as items:
            for item in items:
                if not isinstance(item, SourceFrame):
                    send(sock, ("packet", PacketNotice.of(item.stream_index, item.packet)), lock)
                    continue
                rgb = frame_to_rgb(item.frame)
                if rgb.shape != (height, width, 3):
                    send(sock, ("inline", rgb, item.frame.pts), lock)
                    continue
                slot = frees.take()
                if slot is None:
                    break  # the parent stopped the video
                np.copyto(memory[slot * stride : slot * stride + rgb.size].reshape(rgb.shape), rgb)
                send(sock, ("frame", slot, item.frame.pts), lock)
            else:
                send(sock, ("end",), lock)
    except Exception as exc:  # the upload's errors (InvalidInput, PayloadTooLarge) go to the parent by name
        with contextlib.suppress(OSError):
            send(sock, ("error", type(exc).__name__, str(exc)), lock)
    del memory
    with contextlib.suppress(BufferError):
        ring.close()
    return frees.closed()


class _Frees:
    """The ring's free slots, as the parent gives them back (a receiver thread reads its messages)."""

    def __init__(self, sock: socket.socket, video: int, slots: int) -> None:
        self._sock, self._video = sock, video
        self._free: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        for slot in range(slots):
            self._free.put(slot)
        self._closed = False
        self._thread = threading.Thread(target=self._receive, name="video-decode-frees", daemon=True)
        self._thread.start()

    def take(self) -> int | None:
        """A free slot, waiting for one; None once the video was stopped."""
        slot = self._free.get()
        if slot is None:
            self._free.put(None)
        return slot

    def closed(self) -> bool:
        """Wait for the parent's end of the video: True for "close", False if it stopped it or left."""
        self._thread.join()
        return self._closed

    def _receive(self) -> None:
        try:
            while (message := receive(self._sock)) is not None:
                if message[0] == "free":
                    if message[1] == self._video:
                        self._free.put(message[2])
                else:
                    self._closed = message[0] == "close"
                    return
        except OSError:
            return
        finally:
            self._free.put(None)


if __name__ == "__main__":
    child_process.main(serve)

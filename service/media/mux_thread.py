"""Muxing on a thread of its own, so that the thread feeding the encoder only encodes.

When the encoder is fast (libx264 ultrafast at 4K takes ~5 ms a frame), muxing on the same
thread costs it ~15 % of its time: the muxer's writes call back into Python (the output sink),
and each callback waits for the GIL (bench/results/video_h200_run4_diagnostics.md). Here the
encoder thread queues each frame's packets and goes on; this thread muxes them, in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

_QUEUED = 64  # packet lists (about one per frame) waiting for the muxer: bounded memory


class MuxThread:
    """Calls `mux(packets)` for each submitted list, in order, on its own thread.

    A failure of `mux` is raised to the submitter at its next `submit` or at `finish`; after it,
    submitted packets are dropped, so the submitter never blocks on a dead muxer."""

    def __init__(self, mux: Callable[[Sequence[Any]], None], name: str = "video-mux") -> None:
        self._mux = mux
        self._queue: queue.Queue[Sequence[Any] | None] = queue.Queue(_QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, packets: Sequence[Any]) -> None:
        """Queue `packets` for muxing (waits while the queue is full); raises the muxer's failure."""
        self._raise_failure()
        if packets:
            self._queue.put(packets)

    def finish(self) -> None:
        """Wait until everything submitted is muxed and the thread has ended; raises its failure."""
        self._queue.put(None)
        self._thread.join()
        self._raise_failure()

    def stop(self) -> None:
        """End the thread after what is queued, without raising (the caller is failing already)."""
        self._queue.put(None)
        self._thread.join()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (packets := self._queue.get()) is not None:
            if self._error is not None:
                continue  # failed: keep draining so that submitters never block
            try:
                self._mux(packets)
            except BaseException as exc:  # handed to the submitter
                self._error = exc

"""A bounded hand-off from the event loop to one worker thread, light on the thread's side.

The video encoder's thread takes a frame every 4 ms at libx264 ultrafast in 4K, and it is the one
thread whose every pause the output pays for. Taking a frame from a `bridge.Channel` (a janus queue)
runs a dozen Python steps on that thread (its lock and conditions, a wake-up of the event loop for
the room it made), each of which must get the GIL back from the server's other threads: on the
H200 the encoder thread lost ~0.45 s of a 6.5 s video in its `get`, with the next frame already
queued every time (bench/results/video_h200_run11_waits_60s.md).

Here the thread takes items from a `queue.SimpleQueue` (one C call, which releases the GIL only
when it must wait) and hands the room it made back to the loop once every `batch` items (one
`call_soon_threadsafe`). The loop's side keeps the bound with a semaphore: `put` waits while
`maxsize` items are out and not yet given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from typing import Generic, TypeVar

from service.pipelines.bridge import ChannelClosed

T = TypeVar("T")
_CLOSED = object()


class HandOff(Generic[T]):
    """Loop -> one thread: `await put(item)` on the loop, `get_blocking()` on the thread; `close()`
    (on the loop) drops what is queued and makes every later or blocked put and get raise
    `ChannelClosed`. Create it on the loop's thread."""

    def __init__(self, maxsize: int, batch: int = 4) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._room = asyncio.Semaphore(maxsize)
        self._batch = max(1, min(batch, maxsize))
        self._taken = 0  # by the thread since it last gave room back
        self._closed = False

    @property
    def full(self) -> bool:
        """Whether a put would wait (room comes back `batch` items at a time)."""
        return self._room.locked()

    @property
    def empty(self) -> bool:
        """Whether a get would wait (safe from any thread)."""
        return self._items.empty()

    async def put(self, item: T) -> None:
        if self._closed:
            raise ChannelClosed
        await self._room.acquire()
        if self._closed:
            self._room.release()  # the next blocked putter wakes, sees the same, and passes it on
            raise ChannelClosed
        self._items.put(item)

    def get_blocking(self) -> T:
        """From the worker thread: wait for an item; `ChannelClosed` once the hand-off is closed."""
        item = self._items.get()
        if item is _CLOSED:
            self._items.put(_CLOSED)  # for any later get
            raise ChannelClosed
        self._taken += 1
        if self._taken >= self._batch:
            taken, self._taken = self._taken, 0
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody puts any more
                self._loop.call_soon_threadsafe(self._give_room, taken)
        return item  # type: ignore[return-value]

    def _give_room(self, count: int) -> None:
        for _ in range(count):
            self._room.release()

    def close(self) -> None:
        """Drop what is queued; release the thread (at its get) and every putter (at its put)."""
        self._closed = True
        while not self._items.empty():
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        self._items.put(_CLOSED)
        self._room.release()  # a blocked putter wakes, sees `_closed`, and wakes the next one

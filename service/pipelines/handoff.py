"""Bounded hand-overs between the event loop and one worker thread, lighter than a janus queue.

`HandOff` (loop -> thread, the video encoder's frames) is light on the thread's side; `Inbox`
(thread -> loop, the video decoder's frames) wakes the loop only when it is waiting for an item.

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
import collections
import contextlib
import queue
import threading
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


class Inbox(Generic[T]):
    """One thread -> the loop: `put_blocking(item)` on the thread, `await get()` on the loop;
    `close()` (on the loop) drops what is queued and makes every later or blocked put and get raise
    `ChannelClosed`. Create it on the loop's thread.

    A janus queue wakes the loop and starts a task on it for every item a thread puts (at 250 video
    frames a second, 250 wake-ups and tasks, each taking the GIL that the encoder's thread waits
    for). Here the thread wakes the loop only when the loop is waiting (an empty inbox); while the
    thread is ahead, which is the rule for the video decoder, the loop just takes what is queued.
    Room goes back to the thread through a semaphore."""

    def __init__(self, maxsize: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: collections.deque[T] = collections.deque()
        self._room = threading.Semaphore(max(1, maxsize))
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def empty(self) -> bool:
        """Whether a get would wait (safe from any thread)."""
        return not self._items

    def put_blocking(self, item: T) -> None:
        """From the worker thread: wait for room, then put; `ChannelClosed` once the inbox is closed."""
        self._room.acquire()
        if self._closed:
            self._room.release()  # for any later put
            raise ChannelClosed
        self._items.append(item)
        waiter = self._waiter  # read after the append: a loop that starts waiting later sees the item
        if waiter is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody gets any more
                self._loop.call_soon_threadsafe(_wake, waiter)

    async def get(self) -> T:
        while not self._items or self._closed:
            if self._closed:
                raise ChannelClosed
            waiter = self._loop.create_future()
            self._waiter = waiter
            if self._items:  # put between the check and the waiter: no wake-up will come
                self._waiter = None
                continue
            try:
                await waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        self._room.release()
        return item

    def close(self) -> None:
        """Drop what is queued; release the thread (at its put) and the loop (at its get)."""
        self._closed = True
        self._items.clear()
        self._room.release()  # a blocked putter wakes, sees `_closed`, and passes the release on
        if self._waiter is not None:
            _wake(self._waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)

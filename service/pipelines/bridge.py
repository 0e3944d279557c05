"""Bounded channels between the event loop and worker threads (video decode and encode).

A `Channel` is a janus queue: the loop side awaits, a thread blocks, and a thread's put or get
takes a lock, not a trip through the event loop, so a busy loop does not slow the threads. (When
every get went through the loop, the video encoder thread waited ~3 ms a frame for the loop to hand
over a frame that was already queued: bench/results/video_h200_run4_diagnostics.md.) Because the
queue is bounded, a slow consumer stops its producer, wherever each runs, and memory stays flat.
`close()` releases whoever is blocked on a channel nobody serves any more (`ChannelClosed` there),
so worker threads never outlive their request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import janus

T = TypeVar("T")


class ChannelClosed(Exception):
    """The other side of the channel is gone."""


class Channel(Generic[T]):
    """A bounded FIFO shared by the event loop (`put`, `get`) and threads (`put_blocking`, `get_blocking`).

    Create it on the loop's thread; after `close()` every put and get raises `ChannelClosed`."""

    def __init__(self, maxsize: int) -> None:
        self._queue: janus.Queue[T] = janus.Queue(maxsize)

    @property
    def empty(self) -> bool:
        """Whether a get would wait (from any thread: the queue takes its lock)."""
        return self._queue.sync_q.empty()

    @property
    def full(self) -> bool:
        """Whether a put would wait (for a consumer to take an item)."""
        return self._queue.async_q.full()

    async def put(self, item: T) -> None:
        try:
            await self._queue.async_q.put(item)
        except janus.AsyncQueueShutDown:
            raise ChannelClosed from None

    async def get(self) -> T:
        try:
            return await self._queue.async_q.get()
        except janus.AsyncQueueShutDown:
            raise ChannelClosed from None

    def put_blocking(self, item: T) -> None:
        """From a worker thread: wait for room, then put; `ChannelClosed` once the channel is closed."""
        try:
            self._queue.sync_q.put(item)
        except janus.SyncQueueShutDown:
            raise ChannelClosed from None

    def get_blocking(self) -> T:
        """From a worker thread: wait for an item; `ChannelClosed` once the channel is closed."""
        try:
            return self._queue.sync_q.get()
        except janus.SyncQueueShutDown:
            raise ChannelClosed from None

    def close(self) -> None:
        """Drop what is queued and release everyone blocked on this channel (`ChannelClosed`)."""
        self._queue.shutdown(immediate=True)


class Worker:
    """A daemon thread whose end the event loop can await."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def ended(self) -> None:
        """Until the thread has ended, whatever `target` raised (only the caller's own
        cancellation interrupts the wait)."""
        await asyncio.wait([self._done])
        if not self._done.cancelled():
            self._done.exception()
        self._thread.join()  # it settled `_done` as its last act: this returns at once

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._target()
        except BaseException as exc:  # handed to the loop; the thread itself ends quietly
            error = exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this thread any more
            self._loop.call_soon_threadsafe(self._settle, error)

    def _settle(self, error: BaseException | None) -> None:
        if self._done.done():
            return
        if error is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(error)

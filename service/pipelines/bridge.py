"""Bounded channels between the event loop and worker threads (video decode and encode).

A `Channel` is an `asyncio.Queue` that worker threads can also use: the loop side awaits, a
thread blocks. Because the queue is bounded, a slow consumer stops its producer, wherever each
runs, and memory stays flat. `close()` releases a thread blocked on a channel nobody serves
any more (it raises `ChannelClosed` there), so worker threads never outlive their request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_POLL_S = 0.1


class ChannelClosed(Exception):
    """The other side of the channel is gone."""


class Channel(Generic[T]):
    """A bounded FIFO shared by the event loop (`put`, `get`) and threads (`put_blocking`, `get_blocking`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self._closed = threading.Event()

    async def put(self, item: T) -> None:
        await self._queue.put(item)

    async def get(self) -> T:
        return await self._queue.get()

    def put_blocking(self, item: T) -> None:
        """From a worker thread: wait for room, then put; `ChannelClosed` once the channel is closed."""
        self._wait(lambda: self._queue.put(item))

    def get_blocking(self) -> T:
        """From a worker thread: wait for an item; `ChannelClosed` once the channel is closed."""
        return self._wait(self._queue.get)

    def close(self) -> None:
        """Release the threads blocked on this channel (they get `ChannelClosed`)."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _wait(self, make: Callable[[], Coroutine[Any, Any, R]]) -> R:
        if self._closed.is_set():
            raise ChannelClosed
        try:
            future = asyncio.run_coroutine_threadsafe(make(), self._loop)
        except RuntimeError:  # the loop is closed: nobody will ever serve this channel
            raise ChannelClosed from None
        while True:
            try:
                return future.result(timeout=_POLL_S)
            except concurrent.futures.TimeoutError:
                if self._closed.is_set():
                    future.cancel()
                    raise ChannelClosed from None
            except concurrent.futures.CancelledError:
                raise ChannelClosed from None


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

"""Bidirectional streams: requests handled concurrently, answers in order, a bounded window.

`ordered_window` is the one streaming loop of the gRPC front (our frame stream and the inference
protocol's ModelStreamInfer): each request runs through the same unary handler as a unary call,
so streaming is not a second copy of the request path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from service.core import ServingCore
from service.errors import NotReady

R = TypeVar("R")
S = TypeVar("S")


async def ordered_window(
    requests: AsyncIterator[R], handle: Callable[[R], Awaitable[S]], window: int
) -> AsyncIterator[S]:
    """Run `handle` on every request as it arrives; yield the results in request order.

    Guarantees:
    - at most `window` requests are read and not yet answered: the next request is read only
      after the consumer has taken a result (resumed this generator). A gRPC consumer resumes it
      only once the previous response is sent, and sending waits for HTTP/2 flow control, so a
      client that stops reading stops being read from and the server holds at most `window`
      requests and results for it;
    - handlers run concurrently (frames of one stream batch together);
    - if a handler raises, the results before it are yielded, then its error is raised; if
      reading raises, the results of the requests already read are yielded, then that error;
    - when the generator is closed or cancelled, every handler still running is cancelled.
    """
    slots = asyncio.Semaphore(window)
    pending: asyncio.Queue[asyncio.Task[S] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def read() -> None:
        try:
            while True:
                await slots.acquire()
                try:
                    request = await anext(requests)
                except StopAsyncIteration:
                    return
                pending.put_nowait(loop.create_task(_run(handle, request)))
        finally:
            pending.put_nowait(None)

    reader = loop.create_task(read())
    current: asyncio.Task[S] | None = None
    try:
        while (current := await pending.get()) is not None:
            result = await current
            current = None
            yield result
            slots.release()
        await reader  # raises the reader's error, if any
    finally:
        _discard(reader)
        if current is not None:
            _discard(current)
        while not pending.empty():
            if (task := pending.get_nowait()) is not None:
                _discard(task)


async def until_draining(core: ServingCore, requests: AsyncIterator[R]) -> AsyncIterator[R]:
    """`requests`, until the server starts draining: then the stream ends with UNAVAILABLE (after the
    answers to the requests already read), so a client reconnects to another replica and resumes."""
    async for request in requests:
        if core.state.draining:
            raise NotReady("the server is shutting down: reconnect (to another replica) and resume from here")
        yield request


async def _run(handle: Callable[[R], Awaitable[S]], request: R) -> S:
    return await handle(request)


def _discard(task: asyncio.Task[S] | asyncio.Task[None]) -> None:
    """Cancel `task` and retrieve its outcome, so a failure nobody awaits is not reported as lost."""
    task.cancel()
    task.add_done_callback(lambda t: None if t.cancelled() else t.exception())

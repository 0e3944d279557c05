"""Cancel a request's queued work when its client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Request

from service.scheduling.records import RequestTicket


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: Request, ticket: RequestTicket) -> AsyncIterator[None]:
    """While the block runs, a client disconnect marks `ticket` cancelled (its items are dropped).

    Enter it only after the body has been read: polling for a disconnect consumes ASGI messages.
    """

    async def watch() -> None:
        # With the body read, the server's `receive` returns only when the client disconnects
        # (or the response is complete, which is after this block): no polling, no timers.
        while (await request.receive())["type"] != "http.disconnect":
            continue
        ticket.cancelled = True

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

"""Cancel a request's queued work when its client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Request

from service.scheduling.records import RequestTicket

POLL_INTERVAL_S = 0.05


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: Request, ticket: RequestTicket) -> AsyncIterator[None]:
    """While the block runs, a client disconnect marks `ticket` cancelled (its items are dropped).

    Enter it only after the body has been read: polling for a disconnect consumes ASGI messages.
    """

    async def watch() -> None:
        while not ticket.cancelled:
            if await request.is_disconnected():
                ticket.cancelled = True
                return
            await asyncio.sleep(POLL_INTERVAL_S)

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

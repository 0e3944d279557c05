"""A video upload answered with one JSON line per frame (JSON Lines), streamed as it is made.

The upload is spooled and probed, and the first line made, before the response starts, so those
failures are still proper statuses; a failure after the first line aborts the connection (no
terminating chunk: the client sees an incomplete body), as for filtered videos (docs/video.md).
The lines are made in their own task, which owns the request's scope (admission, deadline,
metrics), and relayed to the response through a small queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from service.core import ServedModel, ServingCore
from service.errors import Cancelled, ServiceError
from service.http.routes_video import VIDEO_FIELD
from service.http.uploads import spool_upload
from service.media.spool import SpooledFile, spool_folder
from service.media.video import VideoProbe, probe_video
from service.scheduling.records import RequestTicket

log = logging.getLogger(__name__)
JSON_LINES = "application/x-ndjson"
_QUEUED_LINES = 8

LineSource = Callable[[RequestTicket, Path, VideoProbe], AsyncIterator[bytes]]
"""Makes a video's lines (each ending in a newline) for a request's ticket, spooled file and probe."""


async def serve_video_lines(
    request: Request, core: ServingCore, served: ServedModel, lines: LineSource, timeout_s: float | None
) -> Response:
    """Spool and probe the uploaded video, then stream the lines `lines` makes of it."""
    settings = core.settings.video
    upload = await spool_upload(request, VIDEO_FIELD, spool_folder(settings.spool_dir), settings.max_upload_bytes)
    try:
        probe = await core.offload(probe_video, upload.path, settings)
    except BaseException:
        upload.discard()
        raise
    relay = _LineRelay(core, served, lines, upload, probe, timeout_s or settings.default_deadline_s)
    first = await relay.first()
    headers = {"X-Model": served.name, "X-Video-Frames": str(probe.frames or "unknown")}
    return StreamingResponse(relay.body(first), media_type=JSON_LINES, headers=headers)


class _LineRelay:
    """Makes one video's lines in its own task and hands them to the response body."""

    def __init__(
        self,
        core: ServingCore,
        served: ServedModel,
        lines: LineSource,
        upload: SpooledFile,
        probe: VideoProbe,
        timeout_s: float,
    ) -> None:
        self._queue: asyncio.Queue[bytes | ServiceError | None] = asyncio.Queue(_QUEUED_LINES)
        self._abandoned = False
        work = self._produce(core, served, lines, upload, probe, timeout_s)
        self._task = asyncio.get_running_loop().create_task(work)

    async def first(self) -> bytes | None:
        """The first line, or the error that came before it (still a proper HTTP status)."""
        item = await self._queue.get()
        if isinstance(item, ServiceError):
            await self._close()
            raise item
        return item

    async def body(self, first: bytes | None) -> AsyncIterator[bytes]:
        """Raising after the first line makes the server abort the connection (an incomplete body)."""
        try:
            item: bytes | ServiceError | None = first
            while item is not None:
                if isinstance(item, ServiceError):
                    log.warning("a video's lines stopped after they started: %s", item)
                    raise item
                yield item
                item = await self._queue.get()
        finally:
            await self._close()

    async def _close(self) -> None:
        if not self._task.done():
            self._abandoned = True
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task

    async def _produce(
        self,
        core: ServingCore,
        served: ServedModel,
        lines: LineSource,
        upload: SpooledFile,
        probe: VideoProbe,
        timeout_s: float,
    ) -> None:
        try:
            async with core.request_scope(served, timeout_s) as ticket:
                try:
                    async for line in lines(ticket, upload.path, probe):
                        await self._queue.put(line)
                except asyncio.CancelledError:
                    if self._abandoned:  # the client went away: counted as 499
                        ticket.cancelled = True
                        raise Cancelled("the client went away") from None
                    raise
            await self._queue.put(None)
        except ServiceError as exc:
            if not self._abandoned:
                await self._queue.put(exc)
        except Exception:
            log.exception("a video's lines failed")
            if not self._abandoned:
                await self._queue.put(ServiceError("the server failed on this video; it has been logged"))
        finally:
            upload.discard()

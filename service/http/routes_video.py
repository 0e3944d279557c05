"""Video on the image-to-image endpoints: upload -> probe -> streamed filtered video, or a job.

An endpoint routes a video here in two lines (see `POST /v1/superres`):

    request, is_video = await sniff_video(request)
    if is_video:
        return await serve_video(request, superres_video(core, served, tile), x_request_timeout)

Everything that can be refused is refused before the first response byte: the upload is spooled
to disk within its byte limit (413), probed (415 not a supported video, 400 unreadable, 413 over
a limit), the parameters checked (422), a place taken in the model's queue (429), and the first
frame filtered. Then the output streams with chunked transfer as the muxer writes it. A failure
after that aborts the connection (no terminating chunk), so clients see an incomplete body,
never a clean end: see docs/video.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.core import ServingCore
from service.errors import Cancelled, ServiceError, Unprocessable
from service.http.routes_jobs import get_jobs, job_info
from service.http.uploads import is_multipart, peek_file_field, spool_upload
from service.media.spool import SpooledFile, spool_folder
from service.media.video import VideoProbe, probe_video
from service.media.video_encode import (
    PRESETS,
    OutputContainer,
    Preset,
    VideoCodec,
    VideoEncodeOptions,
    check_copyable,
    validate_options,
)
from service.pipelines.video import VideoFilter, filter_video

log = logging.getLogger(__name__)

VIDEO_FIELD = "video"
_RELAY_CHUNKS = 4


async def sniff_video(request: Request) -> tuple[Request, bool]:
    """Whether the body is a video (`video/*`, or multipart whose first file part is `video`).

    Returns the request to read the body from from now on: for multipart bodies the start was
    read to find the first part's name, and the returned request replays it."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("video/"):
        return request, True
    if not is_multipart(request):
        return request, False
    request, field = await peek_file_field(request)
    return request, field == VIDEO_FIELD


class VideoQuery(BaseModel):
    """The video parameters of a filter endpoint's query string."""

    model_config = ConfigDict(extra="ignore")

    codec: VideoCodec = "h264"
    container: OutputContainer = "mp4"
    crf: int | None = Field(None, ge=0, le=63)
    bitrate: str | None = Field(None, pattern=r"^\d+(\.\d+)?[kKmM]?$")
    preset: Preset = "veryfast"

    def options(self) -> VideoEncodeOptions:
        return VideoEncodeOptions(self.codec, self.container, self.crf, _bits_per_s(self.bitrate), self.preset)


def _bits_per_s(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text)
    assert match is not None  # the pattern of VideoQuery.bitrate
    return round(float(match[1]) * {"": 1, "k": 1e3, "m": 1e6}[match[2].lower()])


def video_options(query: Mapping[str, str]) -> VideoEncodeOptions:
    """The encoding asked for in the query string; 422 with the parameter's name when invalid."""
    try:
        options = VideoQuery.model_validate(dict(query)).options()
    except ValidationError as exc:
        problems = "; ".join(f"query parameter '{e['loc'][0]}': {e['msg']}" for e in exc.errors())
        raise Unprocessable(problems) from None
    validate_options(options)
    return options


async def serve_video(request: Request, video: VideoFilter, timeout_s: float | None) -> Response:
    """Answer a video request: the filtered video streamed, or 202 and a job (`Prefer: respond-async`)."""
    core: ServingCore = request.app.state.core
    settings = core.settings.video
    options = video_options(request.query_params)
    upload = await spool_upload(request, VIDEO_FIELD, spool_folder(settings.spool_dir), settings.max_upload_bytes)
    try:
        probe = await core.offload(probe_video, upload.path, settings)
        check_copyable(probe, options)
        if "respond-async" in request.headers.get("prefer", "").lower():
            job = get_jobs(request).create(video, upload, probe, options)
            headers = {"Location": f"/v1/jobs/{job.id}", "Preference-Applied": "respond-async"}
            return JSONResponse(job_info(job).model_dump(), status_code=202, headers=headers)
        relay = _Relay(core, video, upload, probe, options, timeout_s or settings.default_deadline_s)
    except BaseException:
        upload.discard()
        raise
    first = await relay.first_chunk()
    headers = {"X-Model": video.served.name, "X-Video-Frames": str(probe.frames or "unknown")}
    return StreamingResponse(relay.body(first), media_type=options.media_type, headers=headers)


class _Relay:
    """Runs one streamed video in its own task (the request's scope: admission, deadline,
    metrics), relaying chunks to the response through a small queue."""

    def __init__(
        self,
        core: ServingCore,
        video: VideoFilter,
        upload: SpooledFile,
        probe: VideoProbe,
        options: VideoEncodeOptions,
        timeout_s: float,
    ) -> None:
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(_RELAY_CHUNKS)
        self._abandoned = False
        self._task = asyncio.get_running_loop().create_task(
            self._produce(core, video, upload, probe, options, timeout_s)
        )

    async def first_chunk(self) -> bytes:
        """The first bytes, or the error that came before them (still a proper HTTP status)."""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            await self._close()
            raise item
        return item or b""

    async def body(self, first: bytes) -> AsyncIterator[bytes]:
        """The response body. Raising here, after the first byte, makes the server abort the
        connection without the terminating chunk: the client sees an incomplete body."""
        try:
            yield first
            while (item := await self._queue.get()) is not None:
                if isinstance(item, BaseException):
                    log.warning("video stream aborted after it started: %s", item)
                    raise item
                yield item
        finally:
            await self._close()

    async def _close(self) -> None:
        if not self._task.done():
            self._abandoned = True
            self._task.cancel()
        await asyncio.wait([self._task])  # its outcome went through the queue
        if not self._task.cancelled():
            self._task.exception()

    async def _produce(
        self,
        core: ServingCore,
        video: VideoFilter,
        upload: SpooledFile,
        probe: VideoProbe,
        options: VideoEncodeOptions,
        timeout_s: float,
    ) -> None:
        try:
            async with core.request_scope(video.served, timeout_s) as ticket:
                chunks = filter_video(core, video.frames(ticket), upload.path, options, ticket, probe=probe)
                try:
                    async with contextlib.aclosing(chunks):  # stops the pipeline at once if we stop reading
                        async for chunk in chunks:
                            await self._queue.put(chunk)
                except asyncio.CancelledError:
                    if self._abandoned:  # the client went away: counted as 499, not as a failure
                        ticket.cancelled = True
                        raise Cancelled("the client went away") from None
                    raise
            upload.discard()  # before the last chunk: the client may look at the spool folder next
            await self._queue.put(None)
        except Exception as exc:
            if not self._abandoned:
                await self._queue.put(exc if isinstance(exc, ServiceError) else _unexpected(exc))
        finally:
            upload.discard()


def _unexpected(exc: Exception) -> ServiceError:
    log.error("video request failed", exc_info=exc)
    return ServiceError("the server failed on this video; it has been logged")


def with_video_openapi(image_operation: dict[str, Any]) -> dict[str, Any]:
    """An image endpoint's `openapi_extra` plus what video adds: the video body, the video
    query parameters, the video responses (200 streamed, 202 job)."""
    merged = copy.deepcopy(image_operation)
    body = merged.setdefault("requestBody", {})
    body["description"] = (
        body.get("description", "") + " Or a video (MP4, MOV, MKV, WebM) as the raw body (any video/* type) or as "
        "multipart field 'video'; it is answered with the filtered video, streamed."
    ).strip()
    content = body.setdefault("content", {})
    content["video/*"] = {"schema": {"type": "string", "format": "binary"}}
    multipart = content.setdefault("multipart/form-data", {"schema": {"type": "object", "properties": {}}})
    multipart["schema"].setdefault("properties", {})[VIDEO_FIELD] = {"type": "string", "format": "binary"}
    merged.setdefault("parameters", []).extend(_VIDEO_PARAMETERS)
    responses = merged.setdefault("responses", {})
    ok = responses.setdefault("200", {})
    ok["description"] = "The upscaled image; for a video, the filtered video, streamed as it is encoded."
    ok.setdefault("content", {}).update({"video/mp4": {}, "video/x-matroska": {}, "video/webm": {}})
    for status, text in _VIDEO_ERRORS.items():
        responses.setdefault(status, {})["description"] = text
    responses["202"] = {
        "description": "Video with 'Prefer: respond-async': the job was created; poll its Location.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobInfo"}}},
    }
    return merged


_VIDEO_ERRORS = {
    "400": "The image or video could not be decoded, or a parameter is malformed.",
    "413": "The body, the image's declared pixel count, or the video's size, duration or frame count is over "
    "its limit (the message names the setting).",
    "415": "The body is not a supported image or video.",
    "422": "A parameter is out of range or does not fit the model, codec or container.",
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_VIDEO_PARAMETERS = [
    _query("codec", {"enum": ["h264", "h265", "av1"], "default": "h264"}, "Video only: output video codec."),
    _query(
        "container", {"enum": ["mp4", "mkv", "webm"], "default": "mp4"}, "Video only: fragmented MP4, Matroska or WebM."
    ),
    _query("crf", {"type": "integer", "minimum": 0, "maximum": 63}, "Video only: constant quality (lower is better)."),
    _query("bitrate", {"type": "string", "pattern": r"^\d+(\.\d+)?[kKmM]?$"}, "Video only: target bits/s, e.g. 8M."),
    _query("preset", {"enum": list(PRESETS), "default": "veryfast"}, "Video only: encoder speed/size trade-off."),
    {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "enum": ["respond-async"]},
        "description": "Video only: answer 202 with an asynchronous job instead of streaming the result.",
    },
]

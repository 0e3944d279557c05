"""`POST /v1/superres/frames`: several frames in one request, the results in the same order.

The body is multipart/form-data with one file part named `frame` per frame (any image format the
image endpoint reads). Every frame is upscaled concurrently, so tiles of all of them batch
together. The answer is `multipart/mixed`: one part per frame, in request order, each with its
`Content-Type`, `Content-Disposition: attachment; name="frame"; filename="frame-00000.png"` and
`X-Frame-Index`. One bad frame fails the request (400/413/415 naming the frame's index).
"""

from __future__ import annotations

import asyncio
import copy
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from service.core import ServedModel, ServingCore
from service.errors import ServiceError
from service.http.disconnect import cancel_on_disconnect
from service.http.routes_superres import (
    IMAGE_ERRORS,
    ModelQuery,
    OutputFormatQuery,
    PngFilterQuery,
    QualityQuery,
    ScaleQuery,
    TileQuery,
    TimeoutHeader,
    encode_options,
    get_core,
)
from service.http.uploads import read_parts
from service.pipelines.superres import EncodedImage, superres_bytes
from service.scheduling.records import RequestTicket
from service.timing import StageTimer

router = APIRouter(tags=["superres"])

FRAME_FIELD = "frame"
OneFrame = Callable[[bytes, RequestTicket], Awaitable[EncodedImage]]
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
FRAMES_BODY = {
    "requestBody": {
        "required": True,
        "description": "multipart/form-data with one file part named 'frame' per frame, in order.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {FRAME_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    }
}
_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "multipart/mixed: one part per frame, in request order, each with X-Frame-Index.",
        "content": {"multipart/mixed": {}},
    }
}


@router.post(
    "/v1/superres/frames", responses={**_OK, **IMAGE_ERRORS}, openapi_extra=FRAMES_BODY, response_class=Response
)
async def superres_frames(
    request: Request,
    scale: ScaleQuery = None,
    model: ModelQuery = None,
    format: OutputFormatQuery = "png",
    quality: QualityQuery = None,
    png_filter: PngFilterQuery = "up",
    tile: TileQuery = None,
    x_request_timeout: TimeoutHeader = None,
) -> Response:
    """Upscale a batch of frames; results in the frames' order."""
    core = get_core(request)
    served = core.superres_model(scale, model)
    options = encode_options(format, quality, png_filter)

    async def one(data: bytes, ticket: RequestTicket) -> EncodedImage:
        return await superres_bytes(core, served, data, options, tile, ticket, StageTimer())

    return await serve_frames(request, core, served, one, x_request_timeout)


async def serve_frames(
    request: Request, core: ServingCore, served: ServedModel, one: OneFrame, timeout_s: float | None
) -> Response:
    """Run `one` on every `frame` part concurrently and answer them as multipart/mixed, in order
    (any image-to-image filter can serve frame batches with it)."""
    timer = StageTimer()
    async with core.request_scope(served, timeout_s) as ticket:
        with timer.measure("receive"):
            frames = await read_parts(
                request, FRAME_FIELD, core.settings.limits.max_body_bytes, core.settings.video.max_batch_frames
            )
        async with cancel_on_disconnect(request, ticket):
            with timer.measure("frames"):
                try:
                    results = await asyncio.gather(*(_numbered(i, one(d, ticket)) for i, d in enumerate(frames)))
                except BaseException:
                    ticket.cancelled = True  # the other frames' queued tiles are dropped
                    raise
    boundary = secrets.token_hex(16)
    headers = {"Server-Timing": timer.server_timing_header(), "X-Model": served.name, "X-Frames": str(len(results))}
    return Response(_multipart(results, boundary), media_type=f"multipart/mixed; boundary={boundary}", headers=headers)


async def _numbered(index: int, work: Awaitable[EncodedImage]) -> EncodedImage:
    """`work`, with the frame's index in the message of its error."""
    try:
        return await work
    except ServiceError as exc:
        numbered = copy.copy(exc)
        numbered.message = f"frame {index}: {exc.message}"
        numbered.args = (numbered.message,)
        raise numbered from None


def _multipart(results: list[EncodedImage], boundary: str) -> bytes:
    out = bytearray()
    for index, result in enumerate(results):
        name = f"frame-{index:05d}.{_EXTENSIONS.get(result.content_type, 'bin')}"
        head = (
            f"--{boundary}\r\nContent-Type: {result.content_type}\r\n"
            f'Content-Disposition: attachment; name="{FRAME_FIELD}"; filename="{name}"\r\n'
            f"X-Frame-Index: {index}\r\nContent-Length: {len(result.data)}\r\n\r\n"
        )
        out += head.encode("ascii") + result.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return bytes(out)

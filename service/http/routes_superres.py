"""`POST /v1/superres`: one image in, the upscaled image out."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from service import metrics
from service.core import ServedModel, ServingCore
from service.errors import Cancelled, DeadlineExceeded, ServiceError, Unprocessable
from service.http.body import read_image_body
from service.http.disconnect import cancel_on_disconnect
from service.http.errors import ERROR_SCHEMA
from service.http.timing import ServerTiming
from service.media.images import CONTENT_TYPES, EncodeOptions, decode, encode, probe
from service.pipelines.superres import upscale
from service.scheduling.records import RequestTicket

router = APIRouter(tags=["superres"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, text in {
        400: "The image could not be decoded or a parameter is malformed.",
        404: "No loaded model has that name or scale.",
        413: "The body or the image's declared pixel count is over the limit.",
        415: "The body is not a supported image.",
        422: "A parameter is out of range or does not fit the model.",
        429: "The model's queue is full; retry after the Retry-After header's seconds.",
        503: "Models are still loading, or the server is draining.",
        504: "The request's deadline passed before it was answered.",
    }.items()
}
_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image as the raw body (any image/* type) or as multipart field 'image'.",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}}
            },
        },
    }
}
_OK: dict[int | str, dict[str, Any]] = {
    200: {"description": "The upscaled image.", "content": {t: {} for t in CONTENT_TYPES.values()}}
}


def get_core(request: Request) -> ServingCore:
    core: ServingCore = request.app.state.core
    return core


@router.post("/v1/superres", responses={**_OK, **_ERRORS}, openapi_extra=_BODY, response_class=Response)
async def superres(
    request: Request,
    scale: Annotated[int | None, Query(ge=1, le=16, description="Upscale factor; picks among loaded models.")] = None,
    model: Annotated[str | None, Query(description="Model name (see GET /v1/models); overrides scale.")] = None,
    format: Annotated[Literal["png", "jpeg", "webp"], Query(description="Output image format.")] = "png",
    quality: Annotated[
        int | None,
        Query(ge=0, le=100, description="JPEG/WebP quality 1-100 (default 90); PNG zlib level 0-9 (default 1)."),
    ] = None,
    tile: Annotated[
        int | None, Query(ge=8, le=4096, description="Tile side in input pixels (tuning; default from the model).")
    ] = None,
    x_request_timeout: Annotated[
        float | None, Header(gt=0, le=3600, description="Seconds until the answer is useless (default from settings).")
    ] = None,
) -> Response:
    """Upscale one image. Tiles of all concurrent requests are batched together."""
    core = get_core(request)
    served = core.superres_model(scale, model)
    options = _encode_options(format, quality)
    started = time.perf_counter()
    status = 200
    try:
        with served.scheduler.admit():
            ticket = core.new_ticket(x_request_timeout)
            async with asyncio.timeout_at(ticket.deadline):
                return await _handle(core, served, request, options, tile, ticket)
    except (TimeoutError, DeadlineExceeded):
        status = 504
        metrics.DROPPED.labels(served.name, "deadline").inc()
        raise DeadlineExceeded("the request's deadline passed before it was answered") from None
    except Cancelled:
        status = 499
        metrics.DROPPED.labels(served.name, "client_gone").inc()
        raise
    except ServiceError as exc:
        status = exc.http_status
        raise
    finally:
        metrics.REQUESTS.labels(served.name, str(status)).inc()
        metrics.REQUEST_SECONDS.labels(served.name).observe(time.perf_counter() - started)


def _encode_options(fmt: Literal["png", "jpeg", "webp"], quality: int | None) -> EncodeOptions:
    if quality is not None and fmt == "png" and quality > 9:
        raise Unprocessable(f"for png, 'quality' is the zlib level 0-9, got {quality}")
    if quality is not None and fmt != "png" and quality < 1:
        raise Unprocessable(f"for {fmt}, 'quality' is 1-100, got {quality}")
    return EncodeOptions(fmt, quality)


async def _handle(
    core: ServingCore,
    served: ServedModel,
    request: Request,
    options: EncodeOptions,
    tile: int | None,
    ticket: RequestTicket,
) -> Response:
    timing = ServerTiming()
    limits = core.settings.limits
    with timing.measure("receive"):
        data = await read_image_body(request, "image", limits.max_body_bytes)
    async with cancel_on_disconnect(request, ticket):
        with timing.measure("decode"):
            header = probe(data, limits.max_input_pixels)
            image = await core.offload(decode, data, header)
        result = await upscale(core, served, image, tile, ticket)
    timing.add("queue", result.timing.queue_s)
    timing.add("compute", result.timing.compute_s)
    with timing.measure("encode"):
        out = result.image
        body = await core.offload(encode, out.rgb, out.alpha, out.grayscale, options)
    headers = {"Server-Timing": timing.header(), "X-Model": served.name}
    return Response(body, media_type=CONTENT_TYPES[options.format], headers=headers)

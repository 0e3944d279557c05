"""`POST /v1/style`: one image in, the same image painted in a style out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from service.http.body import read_image_body
from service.http.disconnect import cancel_on_disconnect
from service.http.routes_superres import (
    IMAGE_BODY,
    IMAGE_ERRORS,
    OutputFormatQuery,
    QualityQuery,
    TimeoutHeader,
    encode_options,
    get_core,
)
from service.http.routes_video import serve_video, sniff_video, with_video_openapi
from service.media.images import CONTENT_TYPES
from service.pipelines.style import style_bytes, style_model, style_video
from service.timing import StageTimer

router = APIRouter(tags=["style"])

_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The stylised image, the size of the input.",
        "content": {t: {} for t in CONTENT_TYPES.values()},
    }
}


@router.post(
    "/v1/style",
    responses={**_OK, **IMAGE_ERRORS},
    openapi_extra=with_video_openapi(IMAGE_BODY),
    response_class=Response,
)
async def style(
    request: Request,
    style: Annotated[
        str | None, Query(description="Style name (see GET /v1/models); needed when several load.")
    ] = None,
    model: Annotated[str | None, Query(description="Style model by model name; overrides style.")] = None,
    format: OutputFormatQuery = "png",
    quality: QualityQuery = None,
    tile: Annotated[
        int | None, Query(ge=8, le=4096, description="Tile side (default from the model: whole image up to it).")
    ] = None,
    x_request_timeout: TimeoutHeader = None,
) -> Response:
    """Paint one image in a style. Images up to the model's tile size run whole."""
    core = get_core(request)
    served = style_model(core, style, model)
    request, is_video = await sniff_video(request)
    if is_video:  # every frame painted, the video streamed back or made a job (docs/video.md)
        return await serve_video(request, style_video(core, served, tile), x_request_timeout)
    options = encode_options(format, quality)
    timer = StageTimer()
    async with core.request_scope(served, x_request_timeout) as ticket:
        with timer.measure("receive"):
            data = await read_image_body(request, "image", core.settings.limits.max_body_bytes)
        async with cancel_on_disconnect(request, ticket):
            result = await style_bytes(core, served, data, options, tile, ticket, timer)
    headers = {"Server-Timing": timer.server_timing_header(), "X-Model": served.name}
    return Response(result.data, media_type=result.content_type, headers=headers)

"""`POST /v1/superres`: one image in, the upscaled image out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from service.core import ServingCore
from service.errors import Unprocessable
from service.http.body import read_image_body
from service.http.disconnect import cancel_on_disconnect
from service.http.errors import ERROR_SCHEMA
from service.http.routes_video import serve_video, sniff_video, with_video_openapi
from service.media.images import CONTENT_TYPES, EncodeOptions, PngFilter
from service.pipelines.superres import superres_bytes
from service.pipelines.video import superres_video
from service.timing import StageTimer

router = APIRouter(tags=["superres"])

IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
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
IMAGE_BODY = {
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

ScaleQuery = Annotated[int | None, Query(ge=1, le=16, description="Upscale factor; picks among loaded models.")]
ModelQuery = Annotated[str | None, Query(description="Model name (see GET /v1/models); overrides scale.")]
TileQuery = Annotated[
    int | None, Query(ge=8, le=4096, description="Tile side in input pixels (tuning; default from the model).")
]
OutputFormatQuery = Annotated[Literal["png", "jpeg", "webp"], Query(description="Output image format.")]
QualityQuery = Annotated[
    int | None,
    Query(ge=0, le=100, description="JPEG/WebP quality 1-100 (default 90); PNG deflate level 0-9 (default 1)."),
]
PngFilterQuery = Annotated[
    PngFilter,
    Query(
        description="PNG row filter: up (default), sub or none (fast: ISA-L deflate, on the GPU's output where it "
        "runs); paeth or adaptive (libpng: a little smaller, several times slower)."
    ),
]
TimeoutHeader = Annotated[
    float | None, Header(gt=0, le=3600, description="Seconds until the answer is useless (default from settings).")
]


def get_core(request: Request) -> ServingCore:
    core: ServingCore = request.app.state.core
    return core


def encode_options(
    fmt: Literal["png", "jpeg", "webp"], quality: int | None, png_filter: PngFilter = "up"
) -> EncodeOptions:
    """Validate the output format's quality knob."""
    if quality is not None and fmt == "png" and quality > 9:
        raise Unprocessable(f"for png, 'quality' is the zlib level 0-9, got {quality}")
    if quality is not None and fmt != "png" and quality < 1:
        raise Unprocessable(f"for {fmt}, 'quality' is 1-100, got {quality}")
    return EncodeOptions(fmt, quality, png_filter)


@router.post(
    "/v1/superres",
    responses={**_OK, **IMAGE_ERRORS},
    openapi_extra=with_video_openapi(IMAGE_BODY),
    response_class=Response,
)
async def superres(
    request: Request,
    scale: ScaleQuery = None,
    model: ModelQuery = None,
    format: OutputFormatQuery = "png",
    quality: QualityQuery = None,
    png_filter: PngFilterQuery = "up",
    tile: TileQuery = None,
    x_request_timeout: TimeoutHeader = None,
) -> Response:
    """Upscale one image. Tiles of all concurrent requests are batched together."""
    core = get_core(request)
    served = core.superres_model(scale, model)
    request, is_video = await sniff_video(request)
    if is_video:  # a video: streamed back filtered, or a job (docs/video.md)
        return await serve_video(request, superres_video(core, served, tile), x_request_timeout)
    options = encode_options(format, quality, png_filter)
    timer = StageTimer()
    async with core.request_scope(served, x_request_timeout) as ticket:
        with timer.measure("receive"):
            data = await read_image_body(request, "image", core.settings.limits.max_body_bytes)
        async with cancel_on_disconnect(request, ticket):
            result = await superres_bytes(core, served, data, options, tile, ticket, timer)
    headers = {"Server-Timing": timer.server_timing_header(), "X-Model": served.name}
    return Response(result.data, media_type=result.content_type, headers=headers)

"""`POST /v1/interpolate`: two frames in, the frames between them out (JSON, base64 images); or a
video in, the video at `factor` times its frame rate out (streamed, or a job: docs/video.md)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from service.errors import InvalidInput, Unprocessable
from service.http.body import read_multipart_files
from service.http.disconnect import cancel_on_disconnect
from service.http.routes_superres import (
    IMAGE_ERRORS,
    OutputFormatQuery,
    QualityQuery,
    TimeoutHeader,
    encode_options,
    get_core,
)
from service.http.routes_video import serve_video, sniff_video, with_video_openapi
from service.pipelines.interpolate import EncodedFrames, interpolate_bytes, plan_times
from service.pipelines.video_interpolate import DEFAULT_FACTOR, MAX_FACTOR, MIN_FACTOR, interpolate_video
from service.timing import StageTimer

router = APIRouter(tags=["interpolate"])
FIELDS = ("frame0", "frame1")

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The two frames as multipart file fields 'frame0' (t = 0) and 'frame1' (t = 1).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {f: {"type": "string", "format": "binary"} for f in FIELDS},
                    "required": list(FIELDS),
                }
            }
        },
    }
}


def _openapi() -> dict[str, Any]:
    """The two-frame body plus the video body and parameters (a video has neither frame field)."""
    operation = with_video_openapi(_BODY)
    operation["requestBody"]["content"]["multipart/form-data"]["schema"].pop("required", None)
    operation["responses"]["200"]["description"] = (
        "The frames between the two frames (JSON); for a video, the video at factor x its frame rate, streamed."
    )
    return operation


class InterpolatedFrame(BaseModel):
    """One frame between frame0 and frame1."""

    time: float = Field(description="Where it lies: 0 is frame0, 1 is frame1.")
    content_type: str
    data: str = Field(description="The encoded image, base64.")


class InterpolateResponse(BaseModel):
    """The frames between two frames, in the order of their times as asked."""

    model: str
    width: int
    height: int
    frames: list[InterpolatedFrame]
    timing: dict[str, float] = Field(description="Milliseconds per stage (decode, queue, compute, encode, total).")


def _parse_times(times: str | None) -> list[float] | None:
    if times is None:
        return None
    try:
        return [float(part) for part in times.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput(f"'times' must be comma-separated numbers such as 0.25,0.5; got {times!r}") from None


def _response(model: str, encoded: EncodedFrames) -> InterpolateResponse:
    frames = [
        InterpolatedFrame(time=t, content_type=encoded.content_type, data=base64.b64encode(body).decode("ascii"))
        for t, body in zip(encoded.times, encoded.frames, strict=True)
    ]
    timing = {name: round(ms, 3) for name, ms in encoded.timer.milliseconds().items()}
    return InterpolateResponse(model=model, width=encoded.width, height=encoded.height, frames=frames, timing=timing)


@router.post("/v1/interpolate", response_model=InterpolateResponse, responses=IMAGE_ERRORS, openapi_extra=_openapi())
async def interpolate(
    request: Request,
    count: Annotated[int | None, Query(ge=1, le=63, description="Evenly spaced frames between (default 1).")] = None,
    times: Annotated[str | None, Query(description="Explicit times in (0, 1), comma-separated: 0.25,0.5.")] = None,
    factor: Annotated[
        int | None,
        Query(
            ge=MIN_FACTOR,
            le=MAX_FACTOR,
            description=f"Video only: output frame rate = factor x the source's (default {DEFAULT_FACTOR}).",
        ),
    ] = None,
    model: Annotated[str | None, Query(description="Interpolation model (default: the first loaded).")] = None,
    format: OutputFormatQuery = "png",
    quality: QualityQuery = None,
    x_request_timeout: TimeoutHeader = None,
) -> Response:
    """Make `count` frames (or frames at `times`) between two frames of the same size; or, for a
    video, `factor - 1` frames between each two of its frames (n frames in, (n - 1) x factor + 1 out)."""
    core = get_core(request)
    served = core.task_model("interpolate", model)
    request, is_video = await sniff_video(request)
    if is_video:
        if count is not None or times is not None:
            raise Unprocessable("'count' and 'times' are for two frames; a video takes 'factor' (frame rate x factor)")
        video = interpolate_video(core, served, factor or DEFAULT_FACTOR)
        return await serve_video(request, video, x_request_timeout)
    if factor is not None:
        raise Unprocessable("'factor' multiplies a video's frame rate; for two frames use 'count' or 'times'")
    wanted = plan_times(count, _parse_times(times))
    options = encode_options(format, quality)
    timer = StageTimer()
    async with core.request_scope(served, x_request_timeout) as ticket:
        with timer.measure("receive"):
            parts = await read_multipart_files(request, FIELDS, core.settings.limits.max_body_bytes)
        async with cancel_on_disconnect(request, ticket):
            encoded = await interpolate_bytes(
                core, served, parts["frame0"], parts["frame1"], wanted, options, ticket, timer
            )
    headers = {"Server-Timing": timer.server_timing_header(), "X-Model": served.name}
    return Response(_response(served.name, encoded).model_dump_json(), media_type="application/json", headers=headers)

"""`POST /v1/detect`: one image in, the objects found as JSON (or drawn onto the image)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from service.core import ServedModel, ServingCore
from service.http.body import read_image_body
from service.http.disconnect import cancel_on_disconnect
from service.http.routes_superres import (
    IMAGE_ERRORS,
    OutputFormatQuery,
    QualityQuery,
    TimeoutHeader,
    encode_options,
    get_core,
)
from service.http.routes_video import VIDEO_FIELD, sniff_video
from service.http.video_lines import JSON_LINES, serve_video_lines
from service.media.images import CONTENT_TYPES
from service.media.video import VideoProbe
from service.pipelines.detect import Detections, DetectOptions, FrameDetections, detect_bytes, detect_video
from service.scheduling.records import RequestTicket
from service.timing import StageTimer

router = APIRouter(tags=["detect"])
FIELDS = ("image", VIDEO_FIELD)


class DetectedObject(BaseModel):
    """One object: its box in input-image pixels, its score, class id and label."""

    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in input-image pixels.")
    score: float
    class_id: int
    label: str


class ImageSize(BaseModel):
    """Size of the input image (after EXIF orientation)."""

    width: int
    height: int


class DetectResponse(BaseModel):
    """Everything one detection request found."""

    model: str
    image: ImageSize
    detections: list[DetectedObject] = Field(description="Best score first.")
    timing: dict[str, float] = Field(description="Milliseconds per stage (decode, queue, compute, total).")


def detect_response(result: Detections, timing: dict[str, float]) -> DetectResponse:
    """The JSON shape of a detection result (also one line of a video's JSON Lines)."""
    objects = [DetectedObject(box=d.box, score=d.score, class_id=d.class_id, label=d.label) for d in result.detections]
    rounded = {name: round(ms, 3) for name, ms in timing.items()}
    return DetectResponse(
        model=result.model,
        image=ImageSize(width=result.width, height=result.height),
        detections=objects,
        timing=rounded,
    )


class FrameDetectionLine(BaseModel):
    """One line of a video's answer (JSON Lines): the detections of one frame."""

    frame: int = Field(description="Frame index, 0-based, in presentation order.")
    time: float | None = Field(description="The frame's timestamp in seconds, if the container gives one.")
    detections: list[DetectedObject]


def frame_line(found: FrameDetections) -> bytes:
    """One JSON Lines line for a video frame."""
    objects = [
        DetectedObject(box=d.box, score=d.score, class_id=d.class_id, label=d.label) for d in found.result.detections
    ]
    time = None if found.time_s is None else round(found.time_s, 6)
    return FrameDetectionLine(frame=found.index, time=time, detections=objects).model_dump_json().encode() + b"\n"


_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The detections as JSON; with annotate=true, the image with the boxes drawn; for a video, "
        "one JSON object per frame (JSON Lines, streamed): {frame, time, detections}.",
        "content": {"application/json": {}, JSON_LINES: {}, **{t: {} for t in CONTENT_TYPES.values()}},
    }
}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image as the raw body (image/*) or multipart field 'image'; or a video as the raw "
        "body (video/*) or multipart field 'video' (answered as JSON Lines).",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {f: {"type": "string", "format": "binary"} for f in FIELDS}}
            },
            "video/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post("/v1/detect", response_model=DetectResponse, responses={**_OK, **IMAGE_ERRORS}, openapi_extra=_BODY)
async def detect(
    request: Request,
    model: Annotated[str | None, Query(description="Detector name (see GET /v1/models); default: the first.")] = None,
    score_threshold: Annotated[float | None, Query(ge=0.0, le=1.0, description="Lowest score kept.")] = None,
    iou_threshold: Annotated[float | None, Query(ge=0.0, le=1.0, description="NMS overlap threshold.")] = None,
    max_detections: Annotated[int | None, Query(ge=1, le=10_000, description="Most detections answered.")] = None,
    annotate: Annotated[bool, Query(description="Answer the image with the boxes drawn instead of JSON.")] = False,
    format: OutputFormatQuery = "png",
    quality: QualityQuery = None,
    x_request_timeout: TimeoutHeader = None,
) -> Any:
    """Detect objects (or faces) in one image; thresholds default to the model's config."""
    core = get_core(request)
    served = core.task_model("detect", model)
    options = DetectOptions(score_threshold, iou_threshold, max_detections)
    request, is_video = await sniff_video(request)
    if is_video:
        return await _video_lines(request, core, served, options, x_request_timeout)
    drawing = encode_options(format, quality) if annotate else None
    timer = StageTimer()
    async with core.request_scope(served, x_request_timeout) as ticket:
        with timer.measure("receive"):
            data = await read_image_body(request, "image", core.settings.limits.max_body_bytes)
        async with cancel_on_disconnect(request, ticket):
            answer = await detect_bytes(core, served, data, options, drawing, ticket, timer)
    headers = {"Server-Timing": timer.server_timing_header(), "X-Model": served.name}
    if answer.image is not None:
        headers["X-Detections"] = str(len(answer.result.detections))
        return Response(answer.image, media_type=answer.content_type, headers=headers)
    body = detect_response(answer.result, timer.milliseconds())
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)


async def _video_lines(
    request: Request, core: ServingCore, served: ServedModel, options: DetectOptions, timeout_s: float | None
) -> Response:
    """A video's detections as JSON Lines, one line per frame (service/http/video_lines.py)."""

    async def lines(ticket: RequestTicket, source: Path, probe: VideoProbe) -> AsyncIterator[bytes]:
        async for found in detect_video(core, served, source, probe, options, ticket):
            yield frame_line(found)

    return await serve_video_lines(request, core, served, lines, timeout_s)

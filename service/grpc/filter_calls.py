"""`Stylize`, `Interpolate` and `Detect` of `filters.v1.Filters`: the same pipelines as HTTP.

The servicer delegates these three methods here; each resolves its model, takes the request's
place in the core (admission, deadline, cancellation with the call) and answers the proto. The
per-image parts (`superres_image`, `stylize_image`, `detect_image`) are what the unary calls and
each frame of a `StreamFrames` call run (service/grpc/frame_streams.py).
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import grpc

from service.core import ServedModel, ServingCore
from service.errors import Unprocessable
from service.grpc.calls import cancel_with_call, time_left
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.images import OutputPlan, decoded_input, output_image, output_plan
from service.media.images import DecodedImage
from service.pipelines.detect import DetectOptions, detect
from service.pipelines.interpolate import interpolate, plan_times
from service.pipelines.style import style_model, style_names, stylize
from service.pipelines.superres import upscale, upscale_encoded
from service.scheduling.records import RequestTicket
from service.timing import StageTimer

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


async def superres_image(
    core: ServingCore,
    served: ServedModel,
    image: pb.Image,
    plan: OutputPlan,
    tile: int | None,
    ticket: RequestTicket,
    timer: StageTimer,
) -> pb.Image:
    """One image through the superres pipeline: decode (if encoded), upscale, answer as planned."""
    decoded = await decoded_input(core, image, timer)
    if not plan.raw:  # encoded where the pixels are (on the GPU for GPU models: service/media/device.py)
        return pb.Image(encoded=await upscale_encoded(core, served, decoded, plan.options, tile, ticket, timer))
    result = await upscale(core, served, decoded, tile, ticket)
    timer.add("queue", result.timing.queue_s)
    timer.add("compute", result.timing.compute_s)
    return await output_image(core, result.image, plan, timer)


def resolve_style(core: ServingCore, name: str) -> ServedModel:
    """The style model a gRPC `model` field names: a style name or a model name (empty: the only one)."""
    wanted = name or None
    return style_model(core, wanted, None) if wanted in style_names(core) else style_model(core, None, wanted)


async def stylize_image(
    core: ServingCore,
    served: ServedModel,
    image: pb.Image,
    plan: OutputPlan,
    tile: int | None,
    ticket: RequestTicket,
    timer: StageTimer,
) -> pb.Image:
    """One image through the style pipeline: decode (if encoded), paint, answer as planned."""
    decoded = await decoded_input(core, image, timer)
    painted, timing = await stylize(core, served, decoded.rgb, tile, ticket)
    timer.add("queue", timing.queue_s)
    timer.add("compute", timing.compute_s)
    return await output_image(core, DecodedImage(painted, decoded.alpha, False, 8), plan, timer)


async def stylize_call(core: ServingCore, request: pb.StylizeRequest, context: Context) -> pb.ImageResponse:
    """One image painted by the style model `request.model` (a model or style name; empty: the only one)."""
    served = resolve_style(core, request.model)
    plan = output_plan(request.output, request.image)
    timer = StageTimer()
    async with core.request_scope(served, time_left(context)) as ticket, cancel_with_call(context, ticket):
        image = await stylize_image(core, served, request.image, plan, None, ticket, timer)
    return pb.ImageResponse(image=image, model=served.name, timing_ms=timer.milliseconds())


async def interpolate_call(
    core: ServingCore, request: pb.InterpolateRequest, context: Context
) -> pb.InterpolateResponse:
    """The frames at `request.times` (empty: [0.5]) between `first` and `second`."""
    served = core.task_model("interpolate", request.model or None)
    times = plan_times(None, [float(t) for t in request.times] or None)
    plan = output_plan(request.output, request.first)
    timer = StageTimer()
    async with core.request_scope(served, time_left(context)) as ticket, cancel_with_call(context, ticket):
        first = await decoded_input(core, request.first, timer)
        second = await decoded_input(core, request.second, timer)
        result = await interpolate(core, served, first.rgb, second.rgb, times, ticket)
        timer.add("queue", result.queue_s)
        timer.add("compute", result.compute_s)
        grayscale = first.grayscale and second.grayscale
        frames = [await output_image(core, DecodedImage(f, None, grayscale, 8), plan, timer) for f in result.frames]
    return pb.InterpolateResponse(frames=frames, model=served.name, timing_ms=timer.milliseconds())


def detect_options(min_score: float, iou_threshold: float = 0.0) -> DetectOptions:
    """The thresholds of a gRPC detect request (0: the model's default), checked to be 0-1."""
    for name, value in (("min_score", min_score), ("iou_threshold", iou_threshold)):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise Unprocessable(f"{name} must be 0-1 (0: the model's default), got {value}")
    return DetectOptions(score_threshold=min_score or None, iou_threshold=iou_threshold or None)


async def detect_image(
    core: ServingCore,
    served: ServedModel,
    image: pb.Image,
    options: DetectOptions,
    ticket: RequestTicket,
    timer: StageTimer,
) -> pb.DetectResponse:
    """The objects `served` finds in one image, as a `DetectResponse` without model and timing."""
    decoded = await decoded_input(core, image, timer)
    result = await detect(core, served, decoded.rgb, options, ticket)
    timer.add("queue", result.timing.queue_s)
    timer.add("compute", result.timing.compute_s)
    detections = [
        pb.Detection(
            x1=d.box[0], y1=d.box[1], x2=d.box[2], y2=d.box[3], score=d.score, class_id=d.class_id, label=d.label
        )
        for d in result.detections
    ]
    return pb.DetectResponse(image_width=result.width, image_height=result.height, detections=detections)


async def detect_call(core: ServingCore, request: pb.DetectRequest, context: Context) -> pb.DetectResponse:
    """The objects the detector `request.model` (empty: the first by name) finds in the image."""
    served = core.task_model("detect", request.model or None)
    options = detect_options(request.min_score)
    timer = StageTimer()
    async with core.request_scope(served, time_left(context)) as ticket, cancel_with_call(context, ticket):
        answer = await detect_image(core, served, request.image, options, ticket, timer)
    answer.model = served.name
    answer.timing_ms.update(timer.milliseconds())
    return answer

"""`Stylize`, `Interpolate` and `Detect` of `filters.v1.Filters`: the same pipelines as HTTP.

The servicer delegates these three methods here; each resolves its model, takes the request's
place in the core (admission, deadline, cancellation with the call) and answers the proto.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import grpc

from service.core import ServingCore
from service.errors import Unprocessable
from service.grpc.calls import cancel_with_call, time_left
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.images import decoded_input, output_image, output_plan
from service.media.images import DecodedImage
from service.pipelines.detect import DetectOptions, detect
from service.pipelines.interpolate import interpolate, plan_times
from service.pipelines.style import style_model, stylize
from service.timing import StageTimer

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


async def stylize_call(core: ServingCore, request: pb.StylizeRequest, context: Context) -> pb.ImageResponse:
    """One image painted by the style model `request.model` (a model or style name; empty: the only one)."""
    name = request.model or None
    styles = {m.config.style.name for m in core.models.values() if m.config.style is not None}
    served = style_model(core, name, None) if name in styles else style_model(core, None, name)
    plan = output_plan(request.output, request.image)
    timer = StageTimer()
    async with core.request_scope(served, time_left(context)) as ticket, cancel_with_call(context, ticket):
        decoded = await decoded_input(core, request.image, timer)
        painted, timing = await stylize(core, served, decoded.rgb, None, ticket)
        timer.add("queue", timing.queue_s)
        timer.add("compute", timing.compute_s)
        image = await output_image(core, DecodedImage(painted, decoded.alpha, False, 8), plan, timer)
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


async def detect_call(core: ServingCore, request: pb.DetectRequest, context: Context) -> pb.DetectResponse:
    """The objects the detector `request.model` (empty: the first by name) finds in the image."""
    served = core.task_model("detect", request.model or None)
    if not (math.isfinite(request.min_score) and 0.0 <= request.min_score <= 1.0):
        raise Unprocessable(f"min_score must be 0-1 (0: the model's default), got {request.min_score}")
    options = DetectOptions(score_threshold=request.min_score or None)
    timer = StageTimer()
    async with core.request_scope(served, time_left(context)) as ticket, cancel_with_call(context, ticket):
        decoded = await decoded_input(core, request.image, timer)
        result = await detect(core, served, decoded.rgb, options, ticket)
        timer.add("queue", result.timing.queue_s)
        timer.add("compute", result.timing.compute_s)
    detections = [
        pb.Detection(
            x1=d.box[0], y1=d.box[1], x2=d.box[2], y2=d.box[3], score=d.score, class_id=d.class_id, label=d.label
        )
        for d in result.detections
    ]
    return pb.DetectResponse(
        image_width=result.width,
        image_height=result.height,
        detections=detections,
        model=served.name,
        timing_ms=timer.milliseconds(),
    )

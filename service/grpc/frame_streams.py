"""`StreamFrames` of `filters.v1.Filters`: live frames through superres, style or detection.

The config message picks the task and its model once; every frame then runs as its own request
(admission, deadline, metrics) through the very per-image function the unary call of that task
runs (`superres_image`, `stylize_image`, `detect_image` in filter_calls.py), concurrently and
answered in order by `ordered_window`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc

from service.core import ServedModel, ServingCore
from service.errors import InvalidInput, ServiceError, Unprocessable
from service.grpc.calls import cancel_with_call, tile_of, time_left
from service.grpc.filter_calls import detect_image, detect_options, resolve_style, stylize_image, superres_image
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.images import OutputPlan, output_plan
from service.grpc.streaming import ordered_window, until_draining
from service.scheduling.records import RequestTicket
from service.timing import StageTimer

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
STREAM_TASKS = ("superres", "style", "detect")

FrameWork = Callable[[pb.Image, RequestTicket, StageTimer], Awaitable[pb.FrameResult]]
"""One frame's image to its result (image or detections; sequence, model and timing added later)."""
ImageFilter = Callable[
    [ServingCore, ServedModel, pb.Image, OutputPlan, int | None, RequestTicket, StageTimer], Awaitable[pb.Image]
]
_IMAGE_FILTERS: dict[str, ImageFilter] = {"superres": superres_image, "style": stylize_image}


@dataclass(frozen=True)
class FrameJob:
    """What a frame stream's config message decided, applied to each of its frames."""

    served: ServedModel
    work: FrameWork
    window: int
    frame_timeout_s: float | None


def frame_job(core: ServingCore, config: pb.StreamConfig) -> FrameJob:
    """Resolve the task, model and options of a frame stream (errors before any frame)."""
    task = config.task or "superres"
    if task == "detect":
        served = core.task_model("detect", config.model or None)
        work = _detect_work(core, served, config)
    elif task in _IMAGE_FILTERS:
        if task == "superres":
            served = core.superres_model(config.scale or None, config.model or None)
        else:
            served = resolve_style(core, config.model)
        work = _image_work(core, served, _IMAGE_FILTERS[task], config)
    else:
        raise InvalidInput(f"frame streams run the tasks {', '.join(STREAM_TASKS)} (empty: superres), not '{task}'")
    limit = core.settings.grpc_stream_window
    timeout = config.frame_timeout_s
    if not math.isfinite(timeout) or timeout < 0:
        raise Unprocessable(f"frame_timeout_s must be a positive number of seconds (or 0), got {timeout}")
    window = min(config.max_in_flight or limit, limit)
    return FrameJob(served, work, window, timeout or None)


def _image_work(core: ServingCore, served: ServedModel, run: ImageFilter, config: pb.StreamConfig) -> FrameWork:
    output_plan(config.output, pb.Image())  # validates format and quality before any frame
    tile = tile_of(config.tile)

    async def work(image: pb.Image, ticket: RequestTicket, timer: StageTimer) -> pb.FrameResult:
        plan = output_plan(config.output, image)  # raw frames answer raw unless a format is asked for
        return pb.FrameResult(image=await run(core, served, image, plan, tile, ticket, timer))

    return work


def _detect_work(core: ServingCore, served: ServedModel, config: pb.StreamConfig) -> FrameWork:
    options = detect_options(config.min_score, config.iou_threshold)

    async def work(image: pb.Image, ticket: RequestTicket, timer: StageTimer) -> pb.FrameResult:
        found = await detect_image(core, served, image, options, ticket, timer)
        return pb.FrameResult(
            detections=found.detections, image_width=found.image_width, image_height=found.image_height
        )

    return work


async def run_frame_stream(
    core: ServingCore, request_iterator: AsyncIterator[pb.FrameStreamRequest], context: Context
) -> AsyncIterator[pb.FrameResult]:
    """The whole `StreamFrames` call: the config, then one result per frame, in order."""
    messages = aiter(request_iterator)
    job = frame_job(core, await _first_config(messages))

    async def handle(frame: pb.Frame) -> pb.FrameResult:
        return await _frame(core, job, frame, context)

    async for result in ordered_window(until_draining(core, _frames(messages)), handle, job.window):
        yield result


async def _frame(core: ServingCore, job: FrameJob, frame: pb.Frame, context: Context) -> pb.FrameResult:
    timer = StageTimer()
    budget = job.frame_timeout_s or core.settings.default_deadline_s
    try:
        scope = core.request_scope(job.served, time_left(context, budget))
        async with scope as ticket, cancel_with_call(context, ticket):
            result = await job.work(frame.image, ticket, timer)
    except ServiceError as error:
        error.message = f"frame {frame.sequence}: {error.message}"
        raise
    result.sequence, result.model = frame.sequence, job.served.name
    result.timing_ms.update(timer.milliseconds())
    return result


async def _first_config(messages: AsyncIterator[pb.FrameStreamRequest]) -> pb.StreamConfig:
    try:
        first = await anext(messages)
    except StopAsyncIteration:
        raise InvalidInput("the stream ended before its first message, a StreamConfig") from None
    if first.WhichOneof("kind") != "config":
        raise InvalidInput("the first message of a frame stream must be `config` (a StreamConfig), then frames")
    return first.config


async def _frames(messages: AsyncIterator[pb.FrameStreamRequest]) -> AsyncIterator[pb.Frame]:
    """The stream's frames, checked: only frames after the config, sequence numbers increasing."""
    last: int | None = None
    async for message in messages:
        if message.WhichOneof("kind") != "frame":
            raise InvalidInput("a frame stream takes one `config` first and then only `frame` messages")
        sequence = message.frame.sequence
        if last is not None and sequence <= last:
            raise InvalidInput(f"frame sequence numbers must increase: frame {sequence} came after frame {last}")
        last = sequence
        yield message.frame

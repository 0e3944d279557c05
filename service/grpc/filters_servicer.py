"""`filters.v1.Filters`: our gRPC API, a thin servicer over the serving core and the pipelines."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc

from service.core import ServedModel, ServingCore
from service.errors import InvalidInput, ServiceError, Unimplemented, Unprocessable
from service.grpc.calls import cancel_with_call, tile_of, time_left
from service.grpc.filter_calls import detect_call, interpolate_call, stylize_call
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from service.grpc.images import OutputPlan, decoded_input, output_image, output_plan
from service.grpc.streaming import ordered_window, until_draining
from service.grpc.video_calls import run_video_stream
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


@dataclass(frozen=True)
class FrameJob:
    """What a frame stream's config message decided, applied to each of its frames."""

    served: ServedModel
    output: pb.OutputOptions
    tile: int | None
    window: int
    frame_timeout_s: float | None


class FiltersServicer(filters_pb2_grpc.FiltersServicer):
    """Every method reaches the same core as HTTP: model lookup, admission, deadline, batcher."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    async def Superres(self, request: pb.SuperresRequest, context: Context) -> pb.ImageResponse:
        served = self.core.superres_model(request.scale or None, request.model or None)
        plan = output_plan(request.output, request.image)
        tile = tile_of(request.tile)
        timer = StageTimer()
        scope = self.core.request_scope(served, time_left(context))
        async with scope as ticket, cancel_with_call(context, ticket):
            image = await superres_image(self.core, served, request.image, plan, tile, ticket, timer)
        return pb.ImageResponse(image=image, model=served.name, timing_ms=timer.milliseconds())

    async def Stylize(self, request: pb.StylizeRequest, context: Context) -> pb.ImageResponse:
        return await stylize_call(self.core, request, context)

    async def Interpolate(self, request: pb.InterpolateRequest, context: Context) -> pb.InterpolateResponse:
        return await interpolate_call(self.core, request, context)

    async def Detect(self, request: pb.DetectRequest, context: Context) -> pb.DetectResponse:
        return await detect_call(self.core, request, context)

    def ProcessVideo(
        self, request_iterator: AsyncIterator[pb.VideoRequest], context: Context
    ) -> AsyncIterator[pb.VideoResponse]:
        return run_video_stream(self.core, request_iterator, context)

    async def ListModels(self, request: pb.ListModelsRequest, context: Context) -> pb.ListModelsResponse:
        models = []
        for loaded in self.core.configs:
            config = loaded.config
            served = self.core.models.get(config.name)
            ready = self.core.ready and served is not None and served.scheduler.pool.healthy
            runtime = served.runtime.name if served is not None else ""
            models.append(
                pb.ModelInfo(
                    name=config.name,
                    task=config.task,
                    scale=config.scale,
                    runtime=runtime,
                    ready=ready,
                    description=config.description,
                )
            )
        return pb.ListModelsResponse(models=models)

    async def StreamFrames(
        self, request_iterator: AsyncIterator[pb.FrameStreamRequest], context: Context
    ) -> AsyncIterator[pb.FrameResult]:
        messages = aiter(request_iterator)
        job = self._frame_job(await _first_config(messages))

        async def handle(frame: pb.Frame) -> pb.FrameResult:
            return await self._frame(job, frame, context)

        async for result in ordered_window(until_draining(self.core, _frames(messages)), handle, job.window):
            yield result

    def _frame_job(self, config: pb.StreamConfig) -> FrameJob:
        if config.task not in ("", "superres"):
            raise Unimplemented(f"frame streams run the superres task in this version, not '{config.task}'")
        served = self.core.superres_model(config.scale or None, config.model or None)
        output_plan(config.output, pb.Image())  # validates format and quality before any frame
        limit = self.core.settings.grpc_stream_window
        timeout = config.frame_timeout_s
        if not math.isfinite(timeout) or timeout < 0:
            raise Unprocessable(f"frame_timeout_s must be a positive number of seconds (or 0), got {timeout}")
        window = min(config.max_in_flight or limit, limit)
        return FrameJob(served, config.output, tile_of(config.tile), window, timeout or None)

    async def _frame(self, job: FrameJob, frame: pb.Frame, context: Context) -> pb.FrameResult:
        timer = StageTimer()
        budget = job.frame_timeout_s or self.core.settings.default_deadline_s
        try:
            plan = output_plan(job.output, frame.image)
            scope = self.core.request_scope(job.served, time_left(context, budget))
            async with scope as ticket, cancel_with_call(context, ticket):
                image = await superres_image(self.core, job.served, frame.image, plan, job.tile, ticket, timer)
        except ServiceError as error:
            error.message = f"frame {frame.sequence}: {error.message}"
            raise
        return pb.FrameResult(
            sequence=frame.sequence, image=image, model=job.served.name, timing_ms=timer.milliseconds()
        )


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

"""`filters.v1.Filters`: our gRPC API, a thin servicer over the serving core and the pipelines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from service.core import ServingCore
from service.grpc.calls import cancel_with_call, tile_of, time_left
from service.grpc.filter_calls import detect_call, interpolate_call, stylize_call, superres_image
from service.grpc.frame_streams import run_frame_stream
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from service.grpc.images import output_plan
from service.grpc.video_calls import run_video_stream
from service.timing import StageTimer

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


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

    def StreamFrames(
        self, request_iterator: AsyncIterator[pb.FrameStreamRequest], context: Context
    ) -> AsyncIterator[pb.FrameResult]:
        return run_frame_stream(self.core, request_iterator, context)

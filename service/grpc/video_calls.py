"""`ProcessVideo` of `filters.v1.Filters`: a video file in chunks, the filtered file back in chunks.

The chunks are spooled to disk as they arrive (never the whole file in memory, within
FILTERS_VIDEO__MAX_UPLOAD_BYTES), the file is probed, and then the same video pipeline as HTTP
(`filter_video`) runs it in a task of its own holding the request's place in the core
(admission, deadline, metrics). Its output chunks reach the call through a small queue, so a
client that stops reading stops the pipeline, and a call that ends early cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, cast, get_args

import grpc

from service.core import ServingCore
from service.errors import InvalidInput, PayloadTooLarge, ServiceError, Unimplemented, Unprocessable
from service.grpc.calls import cancel_with_call, tile_of, time_left
from service.grpc.filter_calls import resolve_style
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.media.spool import SpooledFile, spool_folder
from service.media.video import VideoProbe, probe_video
from service.media.video_encode import OutputContainer, VideoCodec, VideoEncodeOptions, validate_options
from service.pipelines.style import style_video
from service.pipelines.video import VideoFilter, filter_video, superres_video
from service.pipelines.video_interpolate import DEFAULT_FACTOR, interpolate_video

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
log = logging.getLogger(__name__)
PIECE_BYTES = 1 << 20  # answer chunks are cut to this size, far under any message limit
QUEUED_CHUNKS = 4


@dataclass
class VideoJob:
    """What the config message decided, and what the run counted for the summary."""

    video: VideoFilter
    options: VideoEncodeOptions
    frames: int = 0
    output_bytes: int = 0
    started: float = field(default_factory=time.perf_counter)


def video_job(core: ServingCore, config: pb.VideoConfig) -> VideoJob:
    """Resolve the filter and the encoder options of a video stream (errors before any upload)."""
    task, tile = config.task or "superres", tile_of(config.tile)
    if task == "superres":
        video = superres_video(core, core.superres_model(config.scale or None, config.model or None), tile)
    elif task == "style":
        video = style_video(core, resolve_style(core, config.model), tile)
    elif task == "interpolate":
        served = core.task_model("interpolate", config.model or None)
        video = interpolate_video(core, served, config.factor or DEFAULT_FACTOR)
    else:
        raise Unimplemented(f"video streams run the superres, style or interpolate task, not '{task}'")
    codec, container = config.codec or "h264", config.container or "mp4"
    if codec not in get_args(VideoCodec) or container not in get_args(OutputContainer):
        raise Unprocessable(
            f"codec must be one of {list(get_args(VideoCodec))} and container one of "
            f"{list(get_args(OutputContainer))}; got codec '{codec}', container '{container}'"
        )
    options = VideoEncodeOptions(cast(VideoCodec, codec), cast(OutputContainer, container), config.quality or None)
    validate_options(options)
    limit = core.settings.video.max_upload_bytes
    if config.size_bytes > limit:
        raise PayloadTooLarge(
            f"the video is {config.size_bytes} bytes; the limit is {limit} (FILTERS_VIDEO__MAX_UPLOAD_BYTES)"
        )
    return VideoJob(video, options)


async def spool_chunks(messages: AsyncIterator[pb.VideoRequest], folder: Path, limit: int) -> SpooledFile:
    """The stream's `chunk`s, in order, written to a file in `folder`; refused past `limit` bytes."""
    fd, name = tempfile.mkstemp(dir=folder, suffix=".upload")
    path, size = Path(name), 0
    try:
        with os.fdopen(fd, "wb") as file:
            async for message in messages:
                if message.WhichOneof("kind") != "chunk":
                    raise InvalidInput("a video stream takes one `config` first and then only `chunk` messages")
                size += len(message.chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"the video is over the limit of {limit} bytes (FILTERS_VIDEO__MAX_UPLOAD_BYTES)"
                    )
                file.write(message.chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise InvalidInput("the stream has no video: send the file's bytes as `chunk` messages after the config")
    return SpooledFile(path, size)


async def process_video(
    core: ServingCore, job: VideoJob, upload: SpooledFile, context: Context
) -> AsyncIterator[pb.VideoResponse]:
    """Run the spooled video through the pipeline; its output as chunks, then the summary."""
    probe = await core.offload(probe_video, upload.path, core.settings.video)
    queue: asyncio.Queue[bytes | ServiceError | None] = asyncio.Queue(QUEUED_CHUNKS)
    producer = asyncio.get_running_loop().create_task(_produce(core, job, upload, probe, context, queue))
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, ServiceError):
                raise item
            for start in range(0, len(item), PIECE_BYTES):
                yield pb.VideoResponse(chunk=item[start : start + PIECE_BYTES])
            job.output_bytes += len(item)
    finally:
        producer.cancel()
        with contextlib.suppress(BaseException):
            await producer
    elapsed_ms = (time.perf_counter() - job.started) * 1000.0
    summary = pb.VideoSummary(
        frames=job.frames, model=job.video.served.name, output_bytes=job.output_bytes, timing_ms={"total": elapsed_ms}
    )
    yield pb.VideoResponse(summary=summary)


async def _produce(
    core: ServingCore,
    job: VideoJob,
    upload: SpooledFile,
    probe: VideoProbe,
    context: Context,
    queue: asyncio.Queue[bytes | ServiceError | None],
) -> None:
    def counted(frames: int) -> None:
        job.frames = frames

    timeout = time_left(context, core.settings.video.default_deadline_s)
    try:
        async with core.request_scope(job.video.served, timeout) as ticket, cancel_with_call(context, ticket):
            frame_filter = job.video.frames(ticket)
            chunks = filter_video(core, frame_filter, upload.path, job.options, ticket, probe=probe, progress=counted)
            async for chunk in chunks:
                await queue.put(chunk)
        await queue.put(None)
    except ServiceError as error:
        await queue.put(error)
    except Exception:
        log.exception("gRPC video processing failed")
        await queue.put(ServiceError("the server failed on this video; it has been logged"))


async def run_video_stream(
    core: ServingCore, request_iterator: AsyncIterator[pb.VideoRequest], context: Context
) -> AsyncIterator[pb.VideoResponse]:
    """The whole `ProcessVideo` call: config, upload, processing."""
    messages = aiter(request_iterator)
    try:
        first = await anext(messages)
    except StopAsyncIteration:
        raise InvalidInput("the stream ended before its first message, a VideoConfig") from None
    if first.WhichOneof("kind") != "config":
        raise InvalidInput("the first message of a video stream must be `config` (a VideoConfig), then chunks")
    job = video_job(core, first.config)
    settings = core.settings.video
    upload = await spool_chunks(messages, spool_folder(settings.spool_dir), settings.max_upload_bytes)
    try:
        async for response in process_video(core, job, upload, context):
            yield response
    finally:
        upload.discard()

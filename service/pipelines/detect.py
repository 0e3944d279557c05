"""Detection: fit the image into the detector's input, run it through the model's batcher, decode
the outputs, suppress overlaps, and map the boxes back to input pixels (or draw them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import InvalidInput, ServiceError, Unprocessable
from service.media.images import CONTENT_TYPES, DecodedImage, EncodeOptions, decode, encode, probe
from service.media.video import CopiedPacket, SourceFrame, VideoProbe, frame_to_rgb, read_video
from service.pipelines.detection.decoders import decode as decode_outputs
from service.pipelines.detection.draw import draw_detections
from service.pipelines.detection.geometry import InputMapping, fit_image, plan_mapping
from service.pipelines.detection.nms import batched_nms
from service.repository.config import LoadedConfig
from service.repository.tasks import Detection as DetectSection
from service.scheduling.records import BatchTiming, RequestTicket
from service.timing import StageTimer


@dataclass(frozen=True)
class DetectOptions:
    """Per-request overrides of the model's defaults (None: the model's `[detect]` value)."""

    score_threshold: float | None = None
    iou_threshold: float | None = None
    max_detections: int | None = None


@dataclass(frozen=True)
class Detection:
    """One detected object, its box in input-image pixels (x1, y1, x2, y2)."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int
    label: str


@dataclass
class Detections:
    """What a detector found in one image, and where the time went."""

    model: str
    width: int
    height: int
    detections: list[Detection]
    timing: BatchTiming


@lru_cache(maxsize=32)
def _labels_file(path: Path) -> tuple[str, ...]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


def labels_of(loaded: LoadedConfig) -> tuple[str, ...]:
    """Class names of a detect model by class id (from `labels` or `labels_file`)."""
    section = loaded.config.detect
    if section is None:
        return ()
    if section.labels_file:
        return _labels_file(loaded.folder / section.labels_file)
    return tuple(section.labels)


def postprocess(
    section: DetectSection,
    outputs: dict[str, np.ndarray],
    order: list[str],
    mapping: InputMapping,
    options: DetectOptions,
    labels: tuple[str, ...],
) -> list[Detection]:
    """One image's raw outputs -> detections in image pixels, best first (pure; no model)."""
    threshold = section.score_threshold if options.score_threshold is None else options.score_threshold
    iou = section.iou_threshold if options.iou_threshold is None else options.iou_threshold
    limit = section.max_detections if options.max_detections is None else options.max_detections
    found = decode_outputs(section, outputs, order, threshold)
    kept = batched_nms(found.boxes, found.scores, found.classes, iou, section.class_agnostic, limit)
    boxes = mapping.to_image(found.boxes[kept])
    result = []
    for box, score, class_id in zip(boxes, found.scores[kept], found.classes[kept], strict=True):
        x1, y1, x2, y2 = (round(float(v), 2) for v in box)
        if x2 <= x1 or y2 <= y1:
            continue  # entirely outside the image (in the letterbox padding)
        cid = int(class_id)
        label = labels[cid] if cid < len(labels) else str(cid)
        result.append(Detection((x1, y1, x2, y2), round(float(score), 4), cid, label))
    return result


def _section(served: ServedModel) -> DetectSection:
    section = served.config.detect
    if section is None:
        raise Unprocessable(f"model '{served.name}' is a {served.config.task} model, not a detector")
    return section


async def detect(
    core: ServingCore, served: ServedModel, rgb: np.ndarray, options: DetectOptions, ticket: RequestTicket
) -> Detections:
    """Detect objects in one HxWx3 uint8 RGB image (frames of a video call this too)."""
    section = _section(served)
    height, width = rgb.shape[:2]
    mapping = plan_mapping(width, height, section.input_size, section.resize, section.align)
    fitted = await core.offload(fit_image, rgb, mapping, section.pad_value)
    results, timing = await served.scheduler.run([(fitted,)], ticket)
    order = [o.name for o in served.config.outputs]
    outputs = dict(zip(order, results[0], strict=True))
    found = await core.offload(postprocess, section, outputs, order, mapping, options, labels_of(served.loaded))
    return Detections(served.name, width, height, found, timing)


@dataclass
class DetectAnswer:
    """A detection answer: the detections, and the annotated image when one was asked for."""

    result: Detections
    image: bytes | None
    content_type: str | None
    timer: StageTimer


async def detect_bytes(
    core: ServingCore,
    served: ServedModel,
    data: bytes,
    options: DetectOptions,
    annotate: EncodeOptions | None,
    ticket: RequestTicket,
    timer: StageTimer,
) -> DetectAnswer:
    """Encoded image in, detections (and, with `annotate`, the image with boxes drawn) out."""
    with timer.measure("decode"):
        header = probe(data, core.settings.limits.max_input_pixels)
        image: DecodedImage = await core.offload(decode, data, header)
    result = await detect(core, served, image.rgb, options, ticket)
    timer.add("queue", result.timing.queue_s)
    timer.add("compute", result.timing.compute_s)
    if annotate is None:
        return DetectAnswer(result, None, None, timer)
    with timer.measure("encode"):
        drawn = await core.offload(draw_detections, image.rgb, result.detections)
        body = await core.offload(encode, drawn, image.alpha, False, annotate)
    return DetectAnswer(result, body, CONTENT_TYPES[annotate.format], timer)


@dataclass(frozen=True)
class FrameDetections:
    """What a detector found in one frame of a video."""

    index: int  # 0-based, in presentation order
    time_s: float | None  # the frame's timestamp, if the container gives one
    result: Detections


async def _detect_frame(
    core: ServingCore, served: ServedModel, item: SourceFrame, options: DetectOptions, ticket: RequestTicket
) -> FrameDetections:
    rgb = await core.offload(frame_to_rgb, item.frame)
    found = await detect(core, served, rgb, options, ticket)
    pts, base = item.frame.pts, item.frame.time_base
    return FrameDetections(item.index, None if pts is None or base is None else float(pts * base), found)


def _next_frame(frames: Iterator[SourceFrame | CopiedPacket]) -> SourceFrame | None:
    """The next decoded frame (copied audio/subtitle packets skipped), or None at the end."""
    try:
        for item in frames:
            if isinstance(item, SourceFrame):
                return item
    except ServiceError:
        raise
    except Exception as exc:  # PyAV's own errors: the upload is broken past its probe
        raise InvalidInput(f"decoding the video failed: {exc}") from None
    return None


async def detect_video(
    core: ServingCore,
    served: ServedModel,
    source: Path,
    probe: VideoProbe,
    options: DetectOptions,
    ticket: RequestTicket,
) -> AsyncIterator[FrameDetections]:
    """Detections of every frame of the video at `source`, in frame order.

    Frames are decoded on the codec pool while up to `settings.video.frames_in_flight` of them are
    detected at once (their items batch together in the model's scheduler), so memory stays
    bounded however long the video. Closing the generator early drops the frames still queued.
    """
    loop = asyncio.get_running_loop()
    window = core.settings.video.frames_in_flight
    frames = read_video(source, probe, core.settings.video)  # advanced on the codec pool, one frame at a time
    pending: deque[asyncio.Task[FrameDetections]] = deque()
    try:
        while (item := await core.offload(_next_frame, frames)) is not None:
            pending.append(loop.create_task(_detect_frame(core, served, item, options, ticket)))
            if len(pending) >= window:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        ticket.cancelled = ticket.cancelled or bool(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        close = getattr(frames, "close", None)  # a generator: closing it closes the container
        if close is not None:
            with contextlib.suppress(ValueError):  # still running on a pool thread after a cancel
                await core.offload(close)

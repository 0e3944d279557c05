"""Frame interpolation: frames between two frames, from any model under the two-frame contract.

The contract (docs/filters.md): a model takes two frames (its two `kind = "image"` inputs, in
order) and, if its `[interpolate] timestep_input` names one, the time t of the frame wanted as a
float tensor ([N,1,1,1], or [N,1,H,W] with `timestep_shape = "map"`); it gives the frame at t.
A model without a time-step input makes the middle frame, so other times are reached by halving
recursively (times must then be k / 2^d). Frames are padded to `size_multiple` (RIFE: 32) with
repeated edge pixels and cropped back. The classical DIS interpolator and RIFE-style ONNX models
both serve under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import PayloadTooLarge, Unprocessable
from service.media.images import CONTENT_TYPES, EncodeOptions, decode, encode, probe
from service.scheduling.records import RequestTicket
from service.timing import StageTimer

MAX_FRAMES = 63
MAX_HALVINGS = 6  # a model without a time step reaches k / 64 at the finest


def plan_times(count: int | None, times: list[float] | None) -> list[float]:
    """The times asked for: `count` evenly spaced frames, or explicit `times` in (0, 1)."""
    if count is not None and times is not None:
        raise Unprocessable("give 'count' or 'times', not both")
    if times is None:
        n = 1 if count is None else count
        if not 1 <= n <= MAX_FRAMES:
            raise Unprocessable(f"'count' must be 1 to {MAX_FRAMES}, got {n}")
        return [(i + 1) / (n + 1) for i in range(n)]
    if not 1 <= len(times) <= MAX_FRAMES:
        raise Unprocessable(f"'times' must list 1 to {MAX_FRAMES} values, got {len(times)}")
    outside = [t for t in times if not 0.0 < t < 1.0]
    if outside:
        raise Unprocessable(f"times must lie strictly between 0 (frame0) and 1 (frame1); got {outside}")
    return list(times)


@dataclass
class Interpolated:
    """The frames at the requested times, and the time their items spent queued and computing."""

    frames: list[np.ndarray]
    queue_s: float = 0.0
    compute_s: float = 0.0
    times: list[float] = field(default_factory=list)


def check_frame_size(core: ServingCore, served: ServedModel, count: int, width: int, height: int) -> None:
    """Refuse frames the model cannot take (422), or whose `count` frames between would be over
    the output limit (413): before any work (a video checks its first frame)."""
    limit = core.settings.limits.max_output_pixels
    if count * width * height > limit:
        raise PayloadTooLarge(f"{count} frames of {width}x{height} are over the output limit of {limit} pixels")
    tiling = served.config.tiling
    if tiling.fixed_shape and (height > tiling.tile_size or width > tiling.tile_size):
        raise Unprocessable(
            f"model '{served.name}' takes frames up to {tiling.tile_size}x{tiling.tile_size}; "
            f"these are {width}x{height}"
        )


def _padded(rgb: np.ndarray, served: ServedModel) -> np.ndarray:
    tiling = served.config.tiling
    height, width = rgb.shape[:2]
    if tiling.fixed_shape:
        target_h = target_w = tiling.tile_size
    else:
        target_h = -(-height // tiling.size_multiple) * tiling.size_multiple
        target_w = -(-width // tiling.size_multiple) * tiling.size_multiple
    if (target_h, target_w) == (height, width):
        return rgb
    return cv2.copyMakeBorder(rgb, 0, target_h - height, 0, target_w - width, cv2.BORDER_REPLICATE)


def _item(served: ServedModel, first: np.ndarray, second: np.ndarray, t: float) -> tuple[np.ndarray, ...]:
    """One work item in the model's input order: frame 0, frame 1 and (if declared) the time step."""
    section = served.config.interpolate
    frames = iter((first, second))
    values: list[np.ndarray] = []
    for spec in served.config.inputs:
        if spec.kind == "image":
            values.append(next(frames))
        elif section is not None and section.timestep_shape == "map":
            values.append(np.full((1, *first.shape[:2]), t, np.float32))
        else:
            values.append(np.full((1, 1, 1), t, np.float32))
    return tuple(values)


def _output_index(served: ServedModel) -> int:
    return next(i for i, spec in enumerate(served.config.outputs) if spec.kind == "image")


async def _run_pairs(
    served: ServedModel, pairs: list[tuple[np.ndarray, np.ndarray, float]], ticket: RequestTicket, into: Interpolated
) -> list[np.ndarray]:
    items = [_item(served, a, b, t) for a, b, t in pairs]
    results, timing = await served.scheduler.run(items, ticket)
    into.queue_s += timing.queue_s
    into.compute_s += timing.compute_s
    index = _output_index(served)
    return [r[index] for r in results]


def _halvings(times: list[float]) -> int:
    """Levels of recursive halving that reach every time in `times`, or 422 if some never are."""
    depth = 0
    for t in times:
        fraction = Fraction(t).limit_denominator(2**MAX_HALVINGS)
        denominator = fraction.denominator
        if abs(float(fraction) - t) > 1e-9 or denominator & (denominator - 1):
            raise Unprocessable(
                f"this model makes only the middle frame, so times must be k/2^d with d <= {MAX_HALVINGS} "
                f"(count = 1, 3, 7, 15, 31 or 63); got {t}"
            )
        depth = max(depth, denominator.bit_length() - 1)
    return depth


async def _by_halving(
    served: ServedModel, first: np.ndarray, second: np.ndarray, times: list[float], ticket: RequestTicket
) -> Interpolated:
    known: dict[Fraction, np.ndarray] = {Fraction(0): first, Fraction(1): second}
    result = Interpolated([])
    for level in range(1, _halvings(times) + 1):
        step = Fraction(1, 2**level)
        wanted = [step * k for k in range(1, 2**level, 2)]
        pairs = [(known[t - step], known[t + step], 0.5) for t in wanted]
        for t, frame in zip(wanted, await _run_pairs(served, pairs, ticket, result), strict=True):
            known[t] = frame
    result.frames = [known[Fraction(t).limit_denominator(2**MAX_HALVINGS)] for t in times]
    return result


async def interpolate(
    core: ServingCore,
    served: ServedModel,
    frame0: np.ndarray,
    frame1: np.ndarray,
    times: list[float],
    ticket: RequestTicket,
) -> Interpolated:
    """The frames at `times` between two HxWx3 uint8 RGB frames (video frame-rate changes call this)."""
    if frame0.shape != frame1.shape:
        raise Unprocessable(
            f"frame0 is {frame0.shape[1]}x{frame0.shape[0]} and frame1 {frame1.shape[1]}x{frame1.shape[0]}: "
            "the two frames must have the same size"
        )
    height, width = frame0.shape[:2]
    check_frame_size(core, served, len(times), width, height)
    first, second = _padded(frame0, served), _padded(frame1, served)
    section = served.config.interpolate
    if section is not None and section.timestep_input:
        result = Interpolated([])
        result.frames = await _run_pairs(served, [(first, second, t) for t in times], ticket, result)
    else:
        result = await _by_halving(served, first, second, times, ticket)
    result.frames = [np.ascontiguousarray(f[:height, :width]) for f in result.frames]
    result.times = list(times)
    return result


@dataclass
class EncodedFrames:
    """Interpolated frames ready to send."""

    times: list[float]
    frames: list[bytes]
    content_type: str
    width: int
    height: int
    timer: StageTimer


async def interpolate_bytes(
    core: ServingCore,
    served: ServedModel,
    data0: bytes,
    data1: bytes,
    times: list[float],
    options: EncodeOptions,
    ticket: RequestTicket,
    timer: StageTimer,
) -> EncodedFrames:
    """Two encoded images in, the encoded frames between them out (alpha is not interpolated)."""
    limit = core.settings.limits.max_input_pixels
    with timer.measure("decode"):
        images = [await core.offload(decode, data, probe(data, limit)) for data in (data0, data1)]
    result = await interpolate(core, served, images[0].rgb, images[1].rgb, times, ticket)
    timer.add("queue", result.queue_s)
    timer.add("compute", result.compute_s)
    grayscale = images[0].grayscale and images[1].grayscale
    with timer.measure("encode"):
        bodies = [await core.offload(encode, frame, None, grayscale, options) for frame in result.frames]
    height, width = images[0].height, images[0].width
    return EncodedFrames(result.times, bodies, CONTENT_TYPES[options.format], width, height, timer)

"""Frame-rate multiplication: a video at `factor` times its frame rate, through an interpolation model.

Between consecutive source frames i-1 and i come `factor - 1` frames made by `interpolate()` at
t = k / factor (k = 1 .. factor-1), then frame i itself, so n source frames give
(n - 1) * factor + 1 output frames. The output's time base is the source's / factor, which makes
every timestamp an exact integer: frame i is at factor * pts(i), and the k-th frame after frame
i-1 at factor * pts(i-1) + k * (pts(i) - pts(i-1)), so a variable frame rate survives. The frame
rate is the source's x factor; audio and subtitles are copied as for every video filter.

This is a `FrameStage` of the video pipeline (service/pipelines/video.py): it sees the frames in
order (as RGB, converted on the pipeline's reader thread) and keeps the previous one for the next pair.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from service.core import ServedModel, ServingCore
from service.errors import Unprocessable
from service.pipelines.interpolate import check_frame_size, interpolate
from service.pipelines.video import FrameStage, RgbFrame, TimedFrame, VideoFilter
from service.scheduling.records import RequestTicket

MIN_FACTOR, MAX_FACTOR, DEFAULT_FACTOR = 2, 8, 2


def check_factor(factor: int) -> int:
    """`factor` if it is a frame-rate multiple this filter makes, else 422."""
    if not MIN_FACTOR <= factor <= MAX_FACTOR:
        raise Unprocessable(f"factor must be an integer from {MIN_FACTOR} to {MAX_FACTOR}, got {factor}")
    return factor


def interpolate_video(core: ServingCore, served: ServedModel, factor: int) -> VideoFilter:
    """The video filter of `POST /v1/interpolate` with a video: `factor` x the frame rate."""
    check_factor(factor)
    return VideoFilter(served, lambda ticket: FrameRateMultiplier(core, served, factor, ticket))


def output_pts(previous: int | None, current: int | None, factor: int, k: int) -> int | None:
    """The pts (in source time base / factor) of the k-th output frame after the frame at
    `previous` on the way to the frame at `current` (k = factor: the current frame itself).
    None when a frame has no pts: the encoder then spaces the frames at the output frame rate."""
    if previous is None or current is None:
        return None
    return factor * previous + k * (current - previous)


class FrameRateMultiplier(FrameStage):
    """For each source frame: the frames interpolated since the previous one, then the frame."""

    def __init__(self, core: ServingCore, served: ServedModel, factor: int, ticket: RequestTicket) -> None:
        self.rate_factor = factor
        self._core, self._served, self._ticket = core, served, ticket
        self._times = [k / factor for k in range(1, factor)]
        self._previous: RgbFrame | None = None

    def __call__(self, frame: RgbFrame) -> Coroutine[Any, Any, list[TimedFrame]]:
        previous, self._previous = self._previous, frame
        return self._frames(previous, frame)

    async def _frames(self, previous: RgbFrame | None, current: RgbFrame) -> list[TimedFrame]:
        rgb = current.rgb
        last = TimedFrame(rgb, None if current.pts is None else current.pts * self.rate_factor)
        if previous is None:  # the first frame: refuse sizes the pairs cannot take before any output
            check_frame_size(self._core, self._served, len(self._times), rgb.shape[1], rgb.shape[0])
            return [last]
        result = await interpolate(self._core, self._served, previous.rgb, rgb, self._times, self._ticket)
        between = [
            TimedFrame(picture, output_pts(previous.pts, current.pts, self.rate_factor, k))
            for k, picture in enumerate(result.frames, start=1)
        ]
        return [*between, last]

"""The classical frame interpolator: a CPU runtime with no weights, under the interpolation contract.

It serves `task = "interpolate"` models whose `files.builtin` is `"dis-flow"` and runs as
execution slots of the same worker pool as every other runtime, so its frames are queued, batched,
cancelled and timed like model tiles. A batch holds items `(frame0, frame1, t)` (two uint8 NHWC
RGB batches and, if the config declares a timestep input, a float tensor [N,1,1,1] or [N,1,H,W]);
the result is one uint8 NHWC RGB batch of frames at time t.

For each pair of frames: dense optical flow both ways (OpenCV's DIS), a forward-backward
consistency check marking what each frame shows that the other hides, then for each t the source
point of every output pixel in both frames (a fixed-point trace of the flow, exact for locally
smooth motion), both frames warped there (`cv2.remap`) and blended by time, except where the
warped frames disagree and one of them is known to be occluded in the other frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from service.repository.config import LoadedConfig, RuntimeName
from service.runtimes.base import ExecutionSlot, SlotPlacement

BUILTIN = "dis-flow"
TRACE_ITERATIONS = 3
# forward-backward consistency (Sundaram et al. 2010): |F01 + F10(x + F01)|^2 > a (|F01|^2 + |F10|^2) + b
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
# occlusion only decides where the two warped frames disagree by more than this (0-255 units)
DISAGREE_FROM, DISAGREE_SPAN = 8.0, 16.0


@dataclass(frozen=True)
class PairFlow:
    """Dense flows between two frames and what each frame shows that the other hides."""

    forward: np.ndarray  # HxWx2 float32: frame0 pixel -> its position in frame1
    backward: np.ndarray  # HxWx2 float32: frame1 pixel -> its position in frame0
    hidden_in_1: np.ndarray  # HxW float32 in [0, 1]: frame0 content occluded in (or outside) frame1
    hidden_in_0: np.ndarray  # HxW float32 in [0, 1]: frame1 content occluded in (or outside) frame0


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def _remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _hidden(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """Soft mask of pixels of frame a that frame b does not show (inconsistent flow or out of frame)."""
    height, width = flow_ab.shape[:2]
    xs, ys = _grid(height, width)
    to_x, to_y = xs + flow_ab[..., 0], ys + flow_ab[..., 1]
    back = _remap(flow_ba, to_x, to_y)
    error = np.square(flow_ab + back).sum(-1)
    bound = CONSISTENCY_RELATIVE * (np.square(flow_ab).sum(-1) + np.square(back).sum(-1)) + CONSISTENCY_ABSOLUTE
    outside = (to_x < 0) | (to_y < 0) | (to_x > width - 1) | (to_y > height - 1)
    mask = ((error > bound) | outside).astype(np.float32)
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), 1.0))


def _trace(flow: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel at time t comes from in the frame `flow` starts in.

    Solves p = x - t * flow(p) by fixed-point iteration (converges where t * |grad flow| < 1).
    """
    xs, ys = _grid(*flow.shape[:2])
    velocity = flow
    for _ in range(TRACE_ITERATIONS):
        velocity = _remap(flow, xs - t * velocity[..., 0], ys - t * velocity[..., 1])
    return xs - t * velocity[..., 0], ys - t * velocity[..., 1]


class DisInterpolator:
    """DIS optical flow + bidirectional warping + occlusion-aware blending. One per thread."""

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)  # type: ignore[attr-defined]

    def flows(self, frame0: np.ndarray, frame1: np.ndarray) -> PairFlow:
        """Flows both ways between two HxWx3 uint8 RGB frames."""
        gray0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
        gray1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY)
        forward = self._dis.calc(gray0, gray1, None)
        backward = self._dis.calc(gray1, gray0, None)
        return PairFlow(forward, backward, _hidden(forward, backward), _hidden(backward, forward))

    @staticmethod
    def frame(frame0: np.ndarray, frame1: np.ndarray, flow: PairFlow, t: float) -> np.ndarray:
        """The frame at time t in [0, 1] between `frame0` (t = 0) and `frame1` (t = 1)."""
        from0 = _trace(flow.forward, t)
        from1 = _trace(flow.backward, 1.0 - t)
        warped0 = _remap(frame0.astype(np.float32), *from0)
        warped1 = _remap(frame1.astype(np.float32), *from1)
        disagree = np.clip((np.abs(warped0 - warped1).mean(-1) - DISAGREE_FROM) / DISAGREE_SPAN, 0.0, 1.0)
        # what only one frame shows decides where the warps disagree; towards either end the
        # nearer frame is the truth, so the decision fades out there (t = 0 gives frame0 exactly)
        only_in_0 = _remap(flow.hidden_in_1, *from0) * disagree * min(1.0, 2.0 * (1.0 - t))
        only_in_1 = _remap(flow.hidden_in_0, *from1) * disagree * min(1.0, 2.0 * t)
        weight0 = (1.0 - t) * (1.001 - only_in_1)
        weight1 = t * (1.001 - only_in_0)
        blended = (weight0[..., None] * warped0 + weight1[..., None] * warped1) / (weight0 + weight1)[..., None]
        return np.asarray(np.clip(blended + 0.5, 0.0, 255.0), dtype=np.uint8)

    def interpolate(self, frame0: np.ndarray, frame1: np.ndarray, t: float) -> np.ndarray:
        """One frame at time t (flows computed afresh)."""
        return self.frame(frame0, frame1, self.flows(frame0, frame1), t)


def _same_pair(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return a[0].shape == b[0].shape and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


class DisFlowSlot:
    """An execution slot running `DisInterpolator` on its pool thread."""

    def __init__(self, model: LoadedConfig, placement: SlotPlacement) -> None:
        config = model.config
        section = config.interpolate
        images = [i for i, spec in enumerate(config.inputs) if spec.kind == "image"]
        self._frames = (images[0], images[1])
        timestep = section.timestep_input if section else None
        self._timestep = next((i for i, s in enumerate(config.inputs) if s.name == timestep), None)
        self._interpolator = DisInterpolator()
        self._description = f"classical {BUILTIN} cpu slot {placement.index}"

    @property
    def description(self) -> str:
        return self._description

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        first, second = inputs[self._frames[0]], inputs[self._frames[1]]
        count = first.shape[0]
        times = [0.5] * count
        if self._timestep is not None:
            times = [float(v) for v in np.asarray(inputs[self._timestep], np.float32).reshape(count, -1)[:, 0]]
        frames = []
        previous: tuple[np.ndarray, np.ndarray] | None = None
        flow: PairFlow | None = None
        for index in range(count):
            pair = (first[index], second[index])
            if flow is None or previous is None or not _same_pair(previous, pair):
                flow = self._interpolator.flows(*pair)  # items of one request share their pair's flows
            previous = pair
            frames.append(self._interpolator.frame(pair[0], pair[1], flow, min(1.0, max(0.0, times[index]))))
        return [np.stack(frames)]

    def close(self) -> None:
        del self._interpolator


class ClassicalInterpolation:
    """Factory of classical interpolation slots (CPU, no model file)."""

    name: RuntimeName = "classical"

    def unavailable_reason(self, model: LoadedConfig) -> str | None:
        if model.config.task != "interpolate":
            return "the classical runtime serves only interpolate models"
        if model.config.files.builtin != BUILTIN:
            return f"the model names no builtin '{BUILTIN}' algorithm (files.builtin)"
        return None

    def devices(self) -> list[str]:
        return ["cpu"]

    def create_slot(self, model: LoadedConfig, placement: SlotPlacement) -> ExecutionSlot:
        return DisFlowSlot(model, placement)

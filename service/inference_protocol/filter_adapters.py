"""Style, detection and interpolation models in the inference protocol: their tensors, their runs.

- style: `IMAGE` UINT8 [H, W, 3] in, `IMAGE` out (same size); parameter `tile`.
- detect: `IMAGE` in; `BOXES` FP32 [N, 4] (x1, y1, x2, y2 in input pixels), `SCORES` FP32 [N],
  `CLASS_IDS` INT64 [N] out, best first; parameters `score_threshold`, `iou_threshold`,
  `max_detections`. The class names are in the model configuration's parameter `labels`.
- interpolate: `FRAME0`, `FRAME1` UINT8 [H, W, 3] and `TIMES` FP32 [T] in (times strictly between
  0 and 1), `FRAMES` UINT8 [T, H, W, 3] out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import PayloadTooLarge, Unprocessable
from service.inference_protocol.types import ParameterValue, TensorSpec
from service.pipelines.detect import DetectOptions, detect, labels_of
from service.pipelines.interpolate import interpolate, plan_times
from service.pipelines.style import stylize
from service.scheduling.records import RequestTicket

IMAGE = TensorSpec("IMAGE", "UINT8", (-1, -1, 3))


def _checked_image(core: ServingCore, rgb: np.ndarray, name: str) -> np.ndarray:
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    limit = core.settings.limits.max_input_pixels
    if height * width > limit:
        raise PayloadTooLarge(f"input '{name}' is {width}x{height} ({width * height} pixels); the limit is {limit}")
    return np.ascontiguousarray(rgb)


def _number(parameters: Mapping[str, ParameterValue], name: str, low: float, high: float) -> float | None:
    value = parameters.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Unprocessable(f"parameter '{name}' must be a number {low}-{high}, got {value!r}")
    return float(value)


class StyleAdapter:
    """`IMAGE` in, the stylised `IMAGE` (same size) out."""

    platform = "filters_style"

    def inputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (IMAGE,)

    def outputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (IMAGE,)

    def parameters(self, served: ServedModel) -> dict[str, str]:
        style = served.config.style
        return {"task": "style", "style": style.name if style else "", "tile_size": str(served.config.tiling.tile_size)}

    async def infer(
        self,
        core: ServingCore,
        served: ServedModel,
        inputs: Mapping[str, np.ndarray],
        parameters: Mapping[str, ParameterValue],
        ticket: RequestTicket,
    ) -> dict[str, np.ndarray]:
        tile = _number(parameters, "tile", 8, 4096)
        rgb = _checked_image(core, inputs[IMAGE.name], IMAGE.name)
        painted, _ = await stylize(core, served, rgb, None if tile is None else int(tile), ticket)
        return {IMAGE.name: np.ascontiguousarray(painted)}


class DetectAdapter:
    """`IMAGE` in; `BOXES`, `SCORES`, `CLASS_IDS` out (one row per detection, best first)."""

    platform = "filters_detect"
    boxes = TensorSpec("BOXES", "FP32", (-1, 4))
    scores = TensorSpec("SCORES", "FP32", (-1,))
    classes = TensorSpec("CLASS_IDS", "INT64", (-1,))

    def inputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (IMAGE,)

    def outputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (self.boxes, self.scores, self.classes)

    def parameters(self, served: ServedModel) -> dict[str, str]:
        section = served.config.detect
        assert section is not None
        return {
            "task": "detect",
            "decoder": section.decoder,
            "labels": ",".join(labels_of(served.loaded)),
            "score_threshold": str(section.score_threshold),
            "iou_threshold": str(section.iou_threshold),
        }

    async def infer(
        self,
        core: ServingCore,
        served: ServedModel,
        inputs: Mapping[str, np.ndarray],
        parameters: Mapping[str, ParameterValue],
        ticket: RequestTicket,
    ) -> dict[str, np.ndarray]:
        most = _number(parameters, "max_detections", 1, 10_000)
        options = DetectOptions(
            _number(parameters, "score_threshold", 0.0, 1.0),
            _number(parameters, "iou_threshold", 0.0, 1.0),
            None if most is None else int(most),
        )
        result = await detect(core, served, _checked_image(core, inputs[IMAGE.name], IMAGE.name), options, ticket)
        found = result.detections
        return {
            self.boxes.name: np.array([d.box for d in found], np.float32).reshape(-1, 4),
            self.scores.name: np.array([d.score for d in found], np.float32),
            self.classes.name: np.array([d.class_id for d in found], np.int64),
        }


class InterpolateAdapter:
    """`FRAME0`, `FRAME1` and `TIMES` in; `FRAMES` [T, H, W, 3] out."""

    platform = "filters_interpolate"
    first = TensorSpec("FRAME0", "UINT8", (-1, -1, 3))
    second = TensorSpec("FRAME1", "UINT8", (-1, -1, 3))
    times = TensorSpec("TIMES", "FP32", (-1,))
    frames = TensorSpec("FRAMES", "UINT8", (-1, -1, -1, 3))

    def inputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (self.first, self.second, self.times)

    def outputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (self.frames,)

    def parameters(self, served: ServedModel) -> dict[str, str]:
        section = served.config.interpolate
        return {"task": "interpolate", "timestep_input": (section.timestep_input or "") if section else ""}

    async def infer(
        self,
        core: ServingCore,
        served: ServedModel,
        inputs: Mapping[str, np.ndarray],
        parameters: Mapping[str, ParameterValue],
        ticket: RequestTicket,
    ) -> dict[str, np.ndarray]:
        times = plan_times(None, [float(t) for t in inputs[self.times.name]])
        first = _checked_image(core, inputs[self.first.name], self.first.name)
        second = _checked_image(core, inputs[self.second.name], self.second.name)
        result = await interpolate(core, served, first, second, times, ticket)
        return {self.frames.name: np.stack(result.frames)}


FILTER_ADAPTERS: dict[str, StyleAdapter | DetectAdapter | InterpolateAdapter] = {
    "style": StyleAdapter(),
    "detect": DetectAdapter(),
    "interpolate": InterpolateAdapter(),
}

"""Detector outputs -> candidate boxes in model-input pixels: pure numpy, one image at a time.

Three output conventions, chosen by `[detect] decoder` in the model's config:
- `yolo`: [4 + C, N] (the batch axis removed), rows cx, cy, w, h in input pixels and one score per
  class, no objectness (the usual export of YOLOv8 / YOLO11).
- `yolox`: [N, 5 + C] raw grid outputs: x, y offsets in cells, log w, log h, objectness and class
  scores (sigmoid applied in the graph); anchors run stride by stride, row-major within each grid.
- `ssd`: scores [N, C] (column 0 the background when `background_class`) and boxes [N, 4], either
  decoded (normalised x1, y1, x2, y2) or raw offsets against prior boxes (`[detect.priors]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from service.errors import InferenceFailed
from service.repository.tasks import Detection, SsdPriors


@dataclass(frozen=True)
class Candidates:
    """Boxes above the score threshold, before NMS."""

    boxes: np.ndarray  # [N, 4] float32 x1, y1, x2, y2 in model-input pixels
    scores: np.ndarray  # [N] float32
    classes: np.ndarray  # [N] int64


def _best_class(class_scores: np.ndarray, boxes: np.ndarray, threshold: float) -> Candidates:
    """Keep each box with its best class when that score reaches `threshold`."""
    if class_scores.shape[1] == 0:
        raise InferenceFailed("the detector's output has no class scores")
    classes = np.argmax(class_scores, axis=1)
    scores = class_scores[np.arange(len(classes)), classes]
    keep = scores >= threshold
    return Candidates(boxes[keep].astype(np.float32), scores[keep].astype(np.float32), classes[keep].astype(np.int64))


def _corners(cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _expect(output: np.ndarray, ndim: int, what: str) -> None:
    if output.ndim != ndim:
        raise InferenceFailed(f"the detector's output has shape {list(output.shape)}; expected {what}")


def decode_yolo(output: np.ndarray, threshold: float) -> Candidates:
    """YOLO-style [4 + C, N]: centre, size and class scores per anchor."""
    _expect(output, 2, "[4 + classes, anchors] (YOLO) per image")
    if output.shape[0] < 5:
        raise InferenceFailed(f"a YOLO output needs at least 5 rows (4 box + classes), got {output.shape[0]}")
    boxes = _corners(output[0], output[1], output[2], output[3])
    return _best_class(output[4:].T, boxes, threshold)


def yolox_grid(input_size: tuple[int, int], strides: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets [N, 2] (x, y) and the stride [N] of every YOLOX anchor, in output order."""
    width, height = input_size
    cells, steps = [], []
    for stride in strides:
        ys, xs = np.mgrid[0 : height // stride, 0 : width // stride]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full(xs.size, stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode_yolox(output: np.ndarray, input_size: tuple[int, int], strides: list[int], threshold: float) -> Candidates:
    """YOLOX [N, 5 + C]: xy = (offset + cell) * stride, wh = exp(log wh) * stride, score = obj * cls."""
    _expect(output, 2, "[anchors, 5 + classes] (YOLOX) per image")
    cells, steps = yolox_grid(input_size, strides)
    if output.shape[0] != len(cells) or output.shape[1] < 6:
        raise InferenceFailed(
            f"a YOLOX output of shape {list(output.shape)} does not fit input {list(input_size)} with strides "
            f"{strides}: expected [{len(cells)}, 5 + classes]"
        )
    centre = (output[:, :2] + cells) * steps[:, None]
    size = np.exp(np.minimum(output[:, 2:4], 20.0)) * steps[:, None]  # cap: exp of garbage must not overflow
    boxes = _corners(centre[:, 0], centre[:, 1], size[:, 0], size[:, 1])
    return _best_class(output[:, 4:5] * output[:, 5:], boxes, threshold)


_PRIORS: dict[tuple[object, ...], np.ndarray] = {}


def ssd_priors(input_size: tuple[int, int], spec: SsdPriors) -> np.ndarray:
    """Prior boxes [N, 4] as normalised cx, cy, w, h: per feature map, row-major cells, each with
    one prior per min size (the order of the RFB detectors' `generate_priors`)."""
    key = (input_size, tuple(map(tuple, spec.min_sizes)), tuple(spec.steps), spec.clip)
    cached = _PRIORS.get(key)
    if cached is not None:
        return cached
    width, height = input_size
    levels = []
    for step, sizes in zip(spec.steps, spec.min_sizes, strict=True):
        rows, cols = -(-height // step), -(-width // step)
        ys, xs = np.mgrid[0:rows, 0:cols]
        cx = np.repeat((xs.ravel() + 0.5) * step / width, len(sizes))
        cy = np.repeat((ys.ravel() + 0.5) * step / height, len(sizes))
        w = np.tile(np.asarray(sizes, np.float64) / width, rows * cols)
        h = np.tile(np.asarray(sizes, np.float64) / height, rows * cols)
        levels.append(np.stack([cx, cy, w, h], axis=1))
    priors = np.concatenate(levels)
    if spec.clip:
        priors = np.clip(priors, 0.0, 1.0)
    _PRIORS[key] = priors.astype(np.float32)
    return _PRIORS[key]


def decode_ssd_offsets(offsets: np.ndarray, priors: np.ndarray, variance: tuple[float, float]) -> np.ndarray:
    """Raw SSD offsets [N, 4] against priors [N, 4] (cx, cy, w, h) -> normalised x1, y1, x2, y2."""
    centre = offsets[:, :2] * variance[0] * priors[:, 2:] + priors[:, :2]
    size = np.exp(np.minimum(offsets[:, 2:] * variance[1], 20.0)) * priors[:, 2:]
    return _corners(centre[:, 0], centre[:, 1], size[:, 0], size[:, 1])


def decode_ssd(scores: np.ndarray, boxes: np.ndarray, detect: Detection, threshold: float) -> Candidates:
    """SSD-style scores [N, C] and boxes [N, 4] -> candidates in input pixels."""
    _expect(scores, 2, "[anchors, classes] scores per image")
    _expect(boxes, 2, "[anchors, 4] boxes per image")
    if boxes.shape != (scores.shape[0], 4):
        raise InferenceFailed(f"SSD boxes {list(boxes.shape)} do not match scores {list(scores.shape)}")
    if not detect.boxes_decoded:
        assert detect.priors is not None  # the config validator requires them
        priors = ssd_priors(detect.input_size, detect.priors)
        if len(priors) != len(boxes):
            raise InferenceFailed(
                f"the config's priors give {len(priors)} boxes for input {list(detect.input_size)}, "
                f"the model outputs {len(boxes)}"
            )
        boxes = decode_ssd_offsets(boxes, priors, detect.priors.variance)
    width, height = detect.input_size
    pixels = boxes * np.asarray([width, height, width, height], np.float32)
    class_scores = scores[:, 1:] if detect.background_class else scores
    return _best_class(class_scores, pixels, threshold)


def decode(detect: Detection, outputs: Mapping[str, np.ndarray], order: list[str], threshold: float) -> Candidates:
    """Decode one image's outputs (by name; `order` is the config's output order) per `detect`."""
    if detect.decoder == "yolo":
        return decode_yolo(outputs[order[0]], threshold)
    if detect.decoder == "yolox":
        return decode_yolox(outputs[order[0]], detect.input_size, detect.strides, threshold)
    return decode_ssd(outputs[detect.scores_output], outputs[detect.boxes_output], detect, threshold)

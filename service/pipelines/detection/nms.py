"""Greedy non-maximum suppression, within each class or across classes: pure numpy."""

from __future__ import annotations

import numpy as np

MAX_CANDIDATES = 10_000  # the best-scoring boxes NMS looks at; bounds its O(n^2) worst case


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of `box` [4] with each of `boxes` [N, 4] (x1, y1, x2, y2; empty boxes give 0)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = max(0.0, float(box[2] - box[0])) * max(0.0, float(box[3] - box[1]))
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int) -> np.ndarray:
    """Indices of the boxes kept, best score first: each drops the later boxes overlapping it by
    more than `iou_threshold`. At most `limit` are returned."""
    order = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
    keep: list[int] = []
    boxes64 = boxes.astype(np.float64)
    while order.size and len(keep) < limit:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[iou_one_to_many(boxes64[best], boxes64[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float, agnostic: bool, limit: int
) -> np.ndarray:
    """NMS within each class (boxes of different classes never suppress each other) or, with
    `agnostic`, across classes. Indices best score first."""
    if boxes.size == 0:
        return np.zeros(0, np.int64)
    if agnostic:
        return nms(boxes, scores, iou_threshold, limit)
    # shift each class to its own region of the plane so that only same-class boxes can overlap
    span = float(np.abs(boxes).max()) * 2 + 1
    shifted = boxes.astype(np.float64) + (classes.astype(np.float64) * span)[:, None]
    return nms(shifted, scores, iou_threshold, limit)

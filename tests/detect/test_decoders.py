"""Detection building blocks without a model: decoders on synthetic outputs, NMS against OpenCV,
letterbox geometry and its exact back-mapping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.pipelines.detection.decoders import (
    decode_ssd,
    decode_ssd_offsets,
    decode_yolo,
    decode_yolox,
    ssd_priors,
    yolox_grid,
)
from service.pipelines.detection.geometry import fit_image, plan_mapping
from service.pipelines.detection.nms import batched_nms
from service.repository.tasks import Detection, SsdPriors
from tests.detect.models import RFB_MIN_SIZES, RFB_STEPS

RFB_PRIORS = SsdPriors(min_sizes=RFB_MIN_SIZES, steps=RFB_STEPS)


def _reference_priors(width: int, height: int) -> np.ndarray:
    """The RFB repository's prior layout written out as plain loops."""
    priors = []
    for step, sizes in zip(RFB_STEPS, RFB_MIN_SIZES):
        cols, rows = int(np.ceil(width / step)), int(np.ceil(height / step))
        for j in range(rows):
            for i in range(cols):
                for size in sizes:
                    priors.append([(i + 0.5) * step / width, (j + 0.5) * step / height, size / width, size / height])
    return np.clip(np.array(priors), 0.0, 1.0)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (320, 240), (100, 70)])
def test_ssd_priors_follow_the_rfb_layout(width: int, height: int) -> None:
    priors = ssd_priors((width, height), RFB_PRIORS)
    expected = _reference_priors(width, height)
    assert priors.shape == expected.shape
    np.testing.assert_allclose(priors, expected, atol=1e-6)


def test_ssd_offsets_decode_to_the_boxes_they_encode() -> None:
    """Encode known boxes against the priors (the SSD formula), decode, get them back."""
    rng = np.random.default_rng(0)
    priors = ssd_priors((640, 480), RFB_PRIORS).astype(np.float64)
    centre = priors[:, :2] + rng.uniform(-0.05, 0.05, (len(priors), 2))
    size = priors[:, 2:] * rng.uniform(0.5, 2.0, (len(priors), 2))
    offsets = np.concatenate(
        [(centre - priors[:, :2]) / (0.1 * priors[:, 2:]), np.log(size / priors[:, 2:]) / 0.2], axis=1
    )
    decoded = decode_ssd_offsets(offsets, priors, (0.1, 0.2))
    np.testing.assert_allclose(decoded, np.concatenate([centre - size / 2, centre + size / 2], axis=1), atol=1e-9)


def test_ssd_decoding_drops_the_background_column_and_scales_to_input_pixels() -> None:
    section = Detection(decoder="ssd", input_size=(200, 100), boxes_decoded=True)
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4]], np.float32)
    boxes = np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.6, 0.7]], np.float32)
    found = decode_ssd(scores, boxes, section, threshold=0.35)
    assert found.classes.tolist() == [0, 1]
    np.testing.assert_allclose(found.scores, [0.9, 0.4])
    np.testing.assert_allclose(found.boxes, [[20, 20, 60, 40], [100, 50, 120, 70]], atol=1e-4)


def test_yolox_grid_decoding_on_synthetic_outputs() -> None:
    cells, steps = yolox_grid((416, 416), [8, 16, 32])
    assert len(cells) == 52 * 52 + 26 * 26 + 13 * 13
    output = np.zeros((len(cells), 5 + 3), np.float32)
    picks = {
        10: (0.5, 0.25, 1.0, 0.0, 0.9, 2),
        52 * 52 + 30: (0.0, 0.0, 0.0, 0.5, 0.8, 1),
        len(cells) - 1: (1, 1, 2, 2, 0.7, 0),
    }
    for index, (dx, dy, lw, lh, obj, cls) in picks.items():
        output[index, :5] = [dx, dy, lw, lh, obj]
        output[index, 5 + cls] = 1.0
    found = decode_yolox(output, (416, 416), [8, 16, 32], threshold=0.5)
    assert len(found.scores) == 3
    for box, cls in zip(found.boxes, found.classes):
        index = next(i for i, p in picks.items() if p[5] == cls)
        dx, dy, lw, lh, _, _ = picks[index]
        stride, (cx, cy) = steps[index], cells[index]
        centre = ((cx + dx) * stride, (cy + dy) * stride)
        half = (np.exp(lw) * stride / 2, np.exp(lh) * stride / 2)
        np.testing.assert_allclose(
            box, [centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1]], rtol=1e-5
        )


def test_yolo_decoding_takes_the_best_class_without_objectness() -> None:
    output = np.array(
        [[10, 50], [20, 60], [4, 10], [8, 20], [0.2, 0.9], [0.7, 0.05]], np.float32
    )  # rows cx, cy, w, h, class0, class1
    found = decode_yolo(output, threshold=0.5)
    assert found.classes.tolist() == [1, 0]
    np.testing.assert_allclose(found.boxes, [[8, 16, 12, 24], [45, 50, 55, 70]])


def test_classwise_nms_keeps_what_opencv_keeps() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, (300, 2))
    wh = rng.uniform(5, 60, (300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0.0, 1.0, 300).astype(np.float32)
    classes = rng.integers(0, 4, 300)
    ours = batched_nms(boxes, scores, classes, 0.45, agnostic=False, limit=1000)
    rects = [(float(x1), float(y1), float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in boxes]
    theirs = cv2.dnn.NMSBoxesBatched(rects, scores.tolist(), classes.tolist(), 0.0, 0.45)
    assert sorted(ours.tolist()) == sorted(np.asarray(theirs).ravel().tolist())
    agnostic = batched_nms(boxes, scores, classes, 0.45, agnostic=True, limit=1000)
    assert sorted(agnostic.tolist()) == sorted(
        np.asarray(cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, 0.45)).ravel().tolist()
    )
    assert len(batched_nms(boxes, scores, classes, 0.45, agnostic=False, limit=5)) == 5


@given(
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    input_size=st.sampled_from([(416, 416), (640, 480), (96, 64)]),
    mode=st.sampled_from(["letterbox", "resize"]),
    align=st.sampled_from(["center", "top-left"]),
    box=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
)
def test_boxes_map_back_exactly(
    width: int, height: int, input_size: tuple[int, int], mode: str, align: str, box: tuple[float, ...]
) -> None:
    mapping = plan_mapping(width, height, input_size, mode, align)  # type: ignore[arg-type]
    assert mapping.pad_x + mapping.resized_width <= input_size[0]
    assert mapping.pad_y + mapping.resized_height <= input_size[1]
    x1, x2 = sorted((box[0] * width, box[2] * width))
    y1, y2 = sorted((box[1] * height, box[3] * height))
    original = np.array([[x1, y1, x2, y2]])
    np.testing.assert_allclose(mapping.to_image(mapping.to_input(original)), original, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("align", "size"), [("center", (300, 150)), ("top-left", (150, 300)), ("center", (97, 301))])
def test_a_drawn_rectangle_maps_back_to_where_it_was(align: str, size: tuple[int, int]) -> None:
    """Letterbox a black image with a white rectangle, find the rectangle in the model input,
    map its edges back: they land on the original edges to within one input pixel."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = width // 5, height // 3, width * 3 // 4, height * 5 // 6
    image[y1:y2, x1:x2] = 255
    mapping = plan_mapping(width, height, (96, 64), "letterbox", align)  # type: ignore[arg-type]
    fitted = fit_image(image, mapping, pad_value=114)
    assert fitted.shape == (64, 96, 3)
    bright = np.argwhere(fitted[..., 0] > 200)
    found = np.array([[bright[:, 1].min(), bright[:, 0].min(), bright[:, 1].max() + 1, bright[:, 0].max() + 1]], float)
    back = mapping.to_image(found)[0]
    tolerance = np.array([1 / mapping.scale_x, 1 / mapping.scale_y] * 2)
    assert np.all(np.abs(back - [x1, y1, x2, y2]) <= tolerance), (back, (x1, y1, x2, y2))
    # outside the resized image lies the padding
    assert fitted[mapping.pad_y + mapping.resized_height :].size == 0 or np.all(
        fitted[mapping.pad_y + mapping.resized_height :] == 114
    )

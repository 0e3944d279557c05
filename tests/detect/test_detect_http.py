"""POST /v1/detect through the real server with real third-party detectors and real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import httpx
import numpy as np
import onnxruntime as ort

from tests.detect.models import COCO80, TINY_YOLO_ANCHORS, TINY_YOLO_INPUT, TINY_YOLO_LABELS
from tests.support.data import decode_rgb, png_bytes, read_rgb, shared
from tests.support.live_server import LiveServer


def _detect(server: LiveServer, model: str, data: bytes, **params: object) -> dict:  # type: ignore[type-arg]
    response = httpx.post(f"{server.url}/v1/detect", params={"model": model, **params}, content=data, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-model"] == model
    return response.json()  # type: ignore[no-any-return]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union)


def _nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> list[int]:
    rects = [(float(x1), float(y1), float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in boxes]
    kept = cv2.dnn.NMSBoxesBatched(rects, scores.tolist(), classes.tolist(), 0.0, iou)
    return sorted(np.asarray(kept, int).ravel().tolist(), key=lambda i: -scores[i])


def _rfb_reference(model: Path, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The RFB repository's own recipe: resize to 640x480, (x - 127) / 128, scores > 0.7, NMS 0.3."""
    height, width = rgb.shape[:2]
    x = (cv2.resize(rgb, (640, 480)).astype(np.float32) - 127.0) / 128.0
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    scores, boxes = session.run(["scores", "boxes"], {"input": x.transpose(2, 0, 1)[None]})
    keep = scores[0, :, 1] > 0.7
    pixels = boxes[0][keep] * np.array([width, height, width, height])
    face = scores[0, keep, 1]
    order = _nms(pixels, face, np.zeros(len(face), int), 0.3)
    return pixels[order], face[order]


def _yolox_reference(model: Path, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The YOLOX demo's recipe (BGR, top-left letterbox, pad 114, grid decode, obj x cls) with
    argmax classes and class-wise NMS; the resized side is rounded as the service rounds it."""
    height, width = rgb.shape[:2]
    ratio = min(416 / height, 416 / width)
    resized = cv2.resize(rgb[..., ::-1], (round(width * ratio), round(height * ratio)), interpolation=cv2.INTER_LINEAR)
    padded = np.full((416, 416, 3), 114, np.uint8)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"images": padded.transpose(2, 0, 1)[None].astype(np.float32)})
    out = out[0]
    grids, strides = [], []
    for stride in (8, 16, 32):
        xv, yv = np.meshgrid(np.arange(416 // stride), np.arange(416 // stride))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((grids[-1].shape[0], 1), stride))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    xy = (out[:, :2] + grid) * stride
    wh = np.exp(out[:, 2:4]) * stride
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / np.array(
        [resized.shape[1] / width, resized.shape[0] / height] * 2
    )
    scores = out[:, 4:5] * out[:, 5:]
    classes = scores.argmax(1)
    best = scores.max(1)
    keep = best >= 0.3
    boxes, best, classes = boxes[keep], best[keep], classes[keep]
    order = _nms(boxes, best, classes, 0.45)
    return boxes[order], best[order], classes[order]


def test_rfb640_finds_both_faces_in_zidane(detect_server: LiveServer, detect_repository: Path) -> None:
    path = shared("images/zidane.jpg")
    rgb = read_rgb(path)
    answer = _detect(detect_server, "faces-rfb640", path.read_bytes())
    assert answer["image"] == {"width": rgb.shape[1], "height": rgb.shape[0]}
    faces = answer["detections"]
    assert [f["label"] for f in faces] == ["face", "face"], faces
    boxes, scores = _rfb_reference(detect_repository / "faces-rfb640" / "model.onnx", rgb)
    assert len(boxes) == 2
    for face, box, score in zip(faces, boxes, scores):
        np.testing.assert_allclose(face["box"], box, atol=0.05)
        assert abs(face["score"] - score) < 1e-3
    # an independent face detector (OpenCV's YuNet) sees faces in the same places
    yunet = cv2.FaceDetectorYN.create(
        str(shared("models/detection/face_detection_yunet_2026may.onnx")), "", (rgb.shape[1], rgb.shape[0]), 0.6, 0.3
    )
    _, rows = yunet.detect(np.ascontiguousarray(rgb[..., ::-1]))
    theirs = [np.array([x, y, x + w, y + h]) for x, y, w, h in rows[:, :4]]
    for face in faces:
        assert max(_iou(np.array(face["box"]), other) for other in theirs) > 0.5, (face, theirs)


def test_priors_in_the_config_decode_raw_ssd_outputs_like_the_graph_does(detect_server: LiveServer) -> None:
    data = shared("images/zidane.jpg").read_bytes()
    decoded_in_graph = _detect(detect_server, "faces-rfb640", data)["detections"]
    decoded_here = _detect(detect_server, "faces-rfb640-raw", data)["detections"]
    assert len(decoded_here) == len(decoded_in_graph) == 2
    for ours, graph in zip(decoded_here, decoded_in_graph):
        np.testing.assert_allclose(ours["box"], graph["box"], atol=0.05)


def test_yolox_nano_finds_the_bus_and_the_people(detect_server: LiveServer, detect_repository: Path) -> None:
    path = shared("images/bus.jpg")
    rgb = read_rgb(path)
    found = _detect(detect_server, "yolox-nano", path.read_bytes())["detections"]
    labels = [d["label"] for d in found]
    assert labels.count("bus") == 1 and labels.count("person") >= 3, labels
    assert all(d["label"] == COCO80[d["class_id"]] for d in found)
    boxes, scores, classes = _yolox_reference(detect_repository / "yolox-nano" / "model.onnx", rgb)
    assert [d["class_id"] for d in found] == classes.tolist()
    for det, box, score in zip(found, boxes, scores):
        clipped = np.clip(box, 0, [rgb.shape[1], rgb.shape[0]] * 2)
        np.testing.assert_allclose(det["box"], clipped, atol=0.05)
        assert abs(det["score"] - score) < 1e-3
    bus = next(d for d in found if d["label"] == "bus")
    assert (bus["box"][2] - bus["box"][0]) > rgb.shape[1] * 0.8  # the bus spans the photo


def _tiny_expected(width: int, height: int, rows: list[int]) -> np.ndarray:
    """Where the tiny model's constant boxes land in a `width` x `height` image (centred letterbox)."""
    in_w, in_h = TINY_YOLO_INPUT
    ratio = min(in_w / width, in_h / height)
    new_w, new_h = round(width * ratio), round(height * ratio)
    left, top = (in_w - new_w) // 2, (in_h - new_h) // 2
    cx, cy, w, h = TINY_YOLO_ANCHORS[rows, :4].T
    boxes = np.stack([cx - w / 2 - left, cy - h / 2 - top, cx + w / 2 - left, cy + h / 2 - top], axis=1)
    return np.clip(boxes * np.array([width / new_w, height / new_h] * 2), 0, [width, height] * 2)


def test_yolo_style_outputs_classwise_nms_and_thresholds(detect_server: LiveServer) -> None:
    image = np.random.default_rng(0).integers(0, 256, (150, 300, 3), dtype=np.uint8)
    found = _detect(detect_server, "tiny-yolo", png_bytes(image))["detections"]
    # anchor 1 overlaps anchor 0 of its class (suppressed); anchor 2 is another class; 4 is below 0.25
    assert [d["class_id"] for d in found] == [0, 1, 2]
    assert [d["label"] for d in found] == [TINY_YOLO_LABELS[i] for i in (0, 1, 2)]
    np.testing.assert_allclose([d["box"] for d in found], _tiny_expected(300, 150, [0, 2, 3]), atol=0.01)
    low = _detect(detect_server, "tiny-yolo", png_bytes(image), score_threshold=0.05)["detections"]
    assert [d["score"] for d in low] == sorted([0.9, 0.7, 0.6, 0.1], reverse=True)
    loose = _detect(detect_server, "tiny-yolo", png_bytes(image), iou_threshold=0.99)["detections"]
    assert len(loose) == 4  # nothing overlaps that much: anchor 1 comes back
    assert len(_detect(detect_server, "tiny-yolo", png_bytes(image), max_detections=2)["detections"]) == 2


def test_annotate_returns_the_image_with_boxes_drawn(detect_server: LiveServer) -> None:
    path = shared("images/zidane.jpg")
    rgb = read_rgb(path)
    response = httpx.post(
        f"{detect_server.url}/v1/detect",
        params={"model": "faces-rfb640", "annotate": "true", "format": "png"},
        files={"image": ("zidane.jpg", path.read_bytes(), "image/jpeg")},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-detections"] == "2"
    drawn = decode_rgb(response.content)
    assert drawn.shape == rgb.shape
    changed = np.any(drawn != rgb, axis=2)
    assert 0.001 < changed.mean() < 0.2  # outlines and captions, not a different picture


def test_bad_requests_get_clear_answers_and_the_server_keeps_serving(detect_server: LiveServer) -> None:
    url = f"{detect_server.url}/v1/detect"
    data = shared("images/zidane.jpg").read_bytes()
    cases = [
        ({"model": "faces-rfb640", "score_threshold": "1.5"}, data, 422, "score_threshold"),
        ({"model": "nope"}, data, 404, "faces-rfb640"),
        ({"model": "faces-rfb640"}, data[: len(data) // 3], 400, "decoded"),
        ({"model": "faces-rfb640"}, b"", 400, "no body"),
        ({"model": "faces-rfb640"}, b"plain text, not an image", 415, "not an image"),
    ]
    for params, body, status, words in cases:
        response = httpx.post(url, params=params, content=body, timeout=60)
        assert response.status_code == status, (params, response.text)
        assert words in response.json()["error"]["message"], response.text
    assert httpx.get(f"{detect_server.url}/readyz").status_code == 200
    assert len(_detect(detect_server, "faces-rfb640", data)["detections"]) == 2


def test_default_model_and_models_listing(detect_server: LiveServer) -> None:
    """Without `model`, the first detector by name answers; every detector is listed."""
    answer = httpx.post(
        f"{detect_server.url}/v1/detect", content=png_bytes(np.zeros((40, 60, 3), np.uint8)), timeout=60
    )
    assert answer.status_code == 200 and answer.json()["model"] == "faces-rfb640"
    listed = {m["name"]: m["task"] for m in httpx.get(f"{detect_server.url}/v1/models").json()["models"]}
    assert {name for name, task in listed.items() if task == "detect"} == {
        "faces-rfb640",
        "faces-rfb640-raw",
        "tiny-yolo",
        "yolox-nano",
    }

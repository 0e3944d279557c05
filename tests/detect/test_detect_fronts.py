"""Detection over the other fronts: gRPC `Detect`, the Open Inference Protocol (tritonclient), and
videos as JSON Lines; each answers what POST /v1/detect answers for the same pixels."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, raw
from tests.support.data import png_bytes, read_rgb, shared
from tests.support.live_server import LiveServer
from tests.video.clips import write_clip


def _http(server: LiveServer, rgb: np.ndarray, model: str) -> list[dict]:  # type: ignore[type-arg]
    response = httpx.post(
        f"{server.url}/v1/detect", params={"model": model}, content=png_bytes(rgb[..., ::-1]), timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()["detections"]  # type: ignore[no-any-return]


def test_grpc_detect_equals_http(detect_server: LiveServer) -> None:
    rgb = read_rgb(shared("images/bus.jpg"))
    expected = _http(detect_server, rgb, "yolox-nano")
    with channel(detect_server) as ch:
        answer = filters_pb2_grpc.FiltersStub(ch).Detect(
            pb.DetectRequest(image=raw(rgb), model="yolox-nano"), timeout=60
        )
    assert (answer.model, answer.image_width, answer.image_height) == ("yolox-nano", rgb.shape[1], rgb.shape[0])
    assert [d.label for d in answer.detections] == [d["label"] for d in expected]
    for got, want in zip(answer.detections, expected):
        np.testing.assert_allclose([got.x1, got.y1, got.x2, got.y2], want["box"], atol=0.01)
        assert abs(got.score - want["score"]) < 1e-4


def test_inference_protocol_detect_equals_http(detect_server: LiveServer) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    rgb = np.ascontiguousarray(read_rgb(shared("images/zidane.jpg")))
    expected = _http(detect_server, rgb, "faces-rfb640")
    client = httpclient.InferenceServerClient(detect_server.url.removeprefix("http://"))
    try:
        tensor = httpclient.InferInput("IMAGE", list(rgb.shape), "UINT8")
        tensor.set_data_from_numpy(rgb, binary_data=True)
        result = client.infer("faces-rfb640", [tensor], parameters={"score_threshold": 0.7})
        config = client.get_model_config("faces-rfb640")
    finally:
        client.close()
    boxes, scores, classes = (result.as_numpy(n) for n in ("BOXES", "SCORES", "CLASS_IDS"))
    assert boxes.shape == (len(expected), 4) and classes.tolist() == [d["class_id"] for d in expected]
    np.testing.assert_allclose(boxes, [d["box"] for d in expected], atol=0.01)
    np.testing.assert_allclose(scores, [d["score"] for d in expected], atol=1e-4)
    assert config["parameters"]["labels"]["string_value"] == "face"


def test_a_video_is_answered_as_json_lines_one_per_frame(detect_server: LiveServer, tmp_path: Path) -> None:
    photo = read_rgb(shared("images/zidane.jpg"))
    frames = [np.ascontiguousarray(cv2.resize(photo[:, 8 * k : 8 * k + 1200], (640, 360))) for k in range(5)]
    clip = write_clip(tmp_path / "faces.mp4", frames)
    response = httpx.post(
        f"{detect_server.url}/v1/detect",
        params={"model": "faces-rfb640"},
        content=clip.read_bytes(),
        headers={"content-type": "video/mp4"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["frame"] for line in lines] == list(range(5))
    assert [line["time"] for line in lines] == pytest.approx([k / 25 for k in range(5)])
    with av.open(io.BytesIO(clip.read_bytes())) as container:  # the frames as a client decodes them
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for line, frame in zip(lines, decoded):
        labels = [d["label"] for d in line["detections"]]
        assert len(labels) >= 2 and set(labels) == {"face"}, labels
        expected = _http(detect_server, frame, "faces-rfb640")
        np.testing.assert_allclose([d["box"] for d in line["detections"]], [d["box"] for d in expected], atol=0.01)

"""Detection over gRPC `StreamFrames` (task "detect"): each frame's typed detections are what the
unary `Detect` (and POST /v1/detect, for the IoU threshold) answer for the same pixels."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, raw
from tests.support.data import png_bytes, read_rgb, shared
from tests.support.live_server import LiveServer


def _stream(config: pb.StreamConfig, frames: list[np.ndarray]) -> Iterator[pb.FrameStreamRequest]:
    yield pb.FrameStreamRequest(config=config)
    for sequence, rgb in enumerate(frames):
        yield pb.FrameStreamRequest(frame=pb.Frame(sequence=10 + sequence, image=raw(rgb)))


def _boxes(detections: list[pb.Detection]) -> list[tuple[str, int, list[float], float]]:
    return [(d.label, d.class_id, [d.x1, d.y1, d.x2, d.y2], d.score) for d in detections]


def _bus_frames() -> list[np.ndarray]:
    """Three frames of a moving crop of bus.jpg (people and the bus)."""
    photo = read_rgb(shared("images/bus.jpg"))
    return [np.ascontiguousarray(photo[40 * k : 40 * k + 900, 20 * k : 20 * k + 760]) for k in range(3)]


def test_stream_frames_detect_answers_what_unary_detect_answers(detect_server: LiveServer) -> None:
    frames = _bus_frames()
    config = pb.StreamConfig(task="detect", model="yolox-nano", min_score=0.35)
    with channel(detect_server) as ch:
        stub = filters_pb2_grpc.FiltersStub(ch)
        results = list(stub.StreamFrames(_stream(config, frames), timeout=120))
        unary = [
            stub.Detect(pb.DetectRequest(image=raw(rgb), model="yolox-nano", min_score=0.35), timeout=60)
            for rgb in frames
        ]
    assert [r.sequence for r in results] == [10, 11, 12]
    for result, answer, rgb in zip(results, unary, frames, strict=True):
        assert result.model == "yolox-nano"
        assert not result.HasField("image"), "a detect result carries no image"
        assert (result.image_width, result.image_height) == (rgb.shape[1], rgb.shape[0])
        assert len(result.detections) > 0 and "compute" in result.timing_ms
        assert _boxes(list(result.detections)) == _boxes(list(answer.detections))
    assert any(d.label == "bus" for d in results[0].detections)


def test_stream_frames_detect_takes_the_iou_threshold_like_http(detect_server: LiveServer) -> None:
    rgb = np.ascontiguousarray(read_rgb(shared("images/zidane.jpg")))
    config = pb.StreamConfig(task="detect", model="faces-rfb640", min_score=0.5, iou_threshold=0.2)
    with channel(detect_server) as ch:
        results = list(filters_pb2_grpc.FiltersStub(ch).StreamFrames(_stream(config, [rgb, rgb[:, ::-1]]), timeout=120))
    for result, pixels in zip(results, [rgb, np.ascontiguousarray(rgb[:, ::-1])], strict=True):
        response = httpx.post(
            f"{detect_server.url}/v1/detect",
            params={"model": "faces-rfb640", "score_threshold": 0.5, "iou_threshold": 0.2},
            content=png_bytes(pixels[..., ::-1]),
            timeout=120,
        )
        assert response.status_code == 200, response.text
        expected = response.json()["detections"]
        assert [d.label for d in result.detections] == [e["label"] for e in expected] and expected
        for got, want in zip(result.detections, expected, strict=True):
            np.testing.assert_allclose([got.x1, got.y1, got.x2, got.y2], want["box"], atol=0.01)
            assert abs(got.score - want["score"]) < 1e-4


def test_stream_frames_detect_refuses_a_threshold_out_of_range_before_any_frame(detect_server: LiveServer) -> None:
    config = pb.StreamConfig(task="detect", model="yolox-nano", iou_threshold=1.5)
    with channel(detect_server) as ch, pytest.raises(grpc.RpcError) as refused:
        list(filters_pb2_grpc.FiltersStub(ch).StreamFrames(_stream(config, _bus_frames()[:1]), timeout=60))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "iou_threshold must be 0-1 (0: the model's default), got 1.5" in refused.value.details()

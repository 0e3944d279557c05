"""Interpolation over the other fronts: gRPC `Interpolate` and the Open Inference Protocol
(tritonclient) make the frames POST /v1/interpolate makes."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, pixels, raw
from tests.interpolate.test_classical import read_frames
from tests.support.data import decode_rgb, png_bytes, shared
from tests.support.live_server import LiveServer


def _http(server: LiveServer, first: np.ndarray, second: np.ndarray, times: str) -> list[np.ndarray]:
    files = {"frame0": png_bytes(first[..., ::-1]), "frame1": png_bytes(second[..., ::-1])}
    response = httpx.post(f"{server.url}/v1/interpolate", params={"times": times}, files=files, timeout=120)
    assert response.status_code == 200, response.text
    return [decode_rgb(base64.b64decode(f["data"])) for f in response.json()["frames"]]


def _pair() -> tuple[np.ndarray, np.ndarray]:
    frames = read_frames(shared("video/asl_again.mkv"), 42)
    return np.ascontiguousarray(frames[38][100:300, 200:440]), np.ascontiguousarray(frames[40][100:300, 200:440])


def test_grpc_interpolate_equals_http(interpolate_server: LiveServer) -> None:
    first, second = _pair()
    expected = _http(interpolate_server, first, second, "0.25,0.5")
    with channel(interpolate_server) as ch:
        answer = filters_pb2_grpc.FiltersStub(ch).Interpolate(
            pb.InterpolateRequest(first=raw(first), second=raw(second), times=[0.25, 0.5]), timeout=120
        )
    assert answer.model == "interpolate-dis" and len(answer.frames) == 2
    for frame, want in zip(answer.frames, expected):
        np.testing.assert_array_equal(pixels(frame), want)


def test_inference_protocol_interpolate_equals_http(interpolate_server: LiveServer) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    first, second = _pair()
    expected = _http(interpolate_server, first, second, "0.5,0.75")
    client = httpclient.InferenceServerClient(interpolate_server.url.removeprefix("http://"))
    try:
        inputs = []
        for name, array in (("FRAME0", first), ("FRAME1", second), ("TIMES", np.array([0.5, 0.75], np.float32))):
            tensor = httpclient.InferInput(name, list(array.shape), "UINT8" if array.dtype == np.uint8 else "FP32")
            tensor.set_data_from_numpy(array, binary_data=True)
            inputs.append(tensor)
        result = client.infer("interpolate-dis", inputs)
    finally:
        client.close()
    frames = result.as_numpy("FRAMES")
    assert frames.shape == (2, *first.shape)
    np.testing.assert_array_equal(frames, np.stack(expected))

"""Style over the other fronts: gRPC `Stylize`, the Open Inference Protocol (tritonclient), and
video through the video path; each paints what POST /v1/style paints."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, pixels, raw
from tests.support.data import decode_rgb, png_bytes, read_rgb, shared
from tests.support.live_server import LiveServer
from tests.video.clips import noise_frames, read_report, write_clip


def _http(server: LiveServer, rgb: np.ndarray, style: str) -> np.ndarray:
    response = httpx.post(
        f"{server.url}/v1/style", params={"style": style}, content=png_bytes(rgb[..., ::-1]), timeout=300
    )
    assert response.status_code == 200, response.text
    return decode_rgb(response.content)


def test_grpc_stylize_equals_http(style_server: LiveServer) -> None:
    rgb = np.ascontiguousarray(read_rgb(shared("sr/Set5/butterfly.png"))[:120, :160])
    expected = _http(style_server, rgb, "candy")
    with channel(style_server) as ch:
        stub = filters_pb2_grpc.FiltersStub(ch)
        by_style = stub.Stylize(pb.StylizeRequest(image=raw(rgb), model="candy"), timeout=120)
        by_model = stub.Stylize(pb.StylizeRequest(image=raw(rgb), model="style-candy"), timeout=120)
    assert by_style.model == by_model.model == "style-candy"
    np.testing.assert_array_equal(pixels(by_style.image), expected)
    np.testing.assert_array_equal(pixels(by_model.image), expected)


def test_inference_protocol_style_equals_http(style_server: LiveServer) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    rgb = np.ascontiguousarray(read_rgb(shared("sr/Set5/butterfly.png"))[:100, :100])
    expected = _http(style_server, rgb, "mosaic")
    client = httpclient.InferenceServerClient(style_server.url.removeprefix("http://"))
    try:
        tensor = httpclient.InferInput("IMAGE", list(rgb.shape), "UINT8")
        tensor.set_data_from_numpy(rgb, binary_data=True)
        result = client.infer("style-mosaic", [tensor])
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("IMAGE"), expected)


def test_a_video_comes_back_painted_frame_by_frame(style_server: LiveServer, tmp_path: Path) -> None:
    frames = noise_frames(4, 96, 64, seed=5)
    clip = write_clip(tmp_path / "noise.mp4", frames)
    response = httpx.post(
        f"{style_server.url}/v1/style",
        params={"style": "candy"},
        content=clip.read_bytes(),
        headers={"content-type": "video/mp4"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "style-candy"
    report = read_report(response.content, keep_frames=True)
    source = read_report(clip.read_bytes(), keep_frames=True)
    assert (report.width, report.height) == (96, 64) and len(report.frames) == 4
    for out, src in zip(report.frames, source.frames):
        assert np.abs(out.astype(float) - src).mean() > 20.0  # painted, not passed through

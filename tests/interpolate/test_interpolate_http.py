"""POST /v1/interpolate through the real server: the classical default and RIFE-style models."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from service.runtimes.classical_interpolation import DisInterpolator
from tests.interpolate.test_classical import read_frames
from tests.support.data import decode_rgb, png_bytes, shared
from tests.support.live_server import LiveServer


def _post(server: LiveServer, first: np.ndarray, second: np.ndarray, **params: object) -> httpx.Response:
    files = {
        "frame0": ("a.png", png_bytes(first[..., ::-1]), "image/png"),
        "frame1": ("b.png", png_bytes(second[..., ::-1]), "image/png"),
    }
    return httpx.post(f"{server.url}/v1/interpolate", params=params, files=files, timeout=120)


def _frames(response: httpx.Response) -> tuple[list[float], list[np.ndarray]]:
    assert response.status_code == 200, response.text
    body = response.json()
    times = [f["time"] for f in body["frames"]]
    return times, [decode_rgb(base64.b64decode(f["data"])) for f in body["frames"]]


def _pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(height * width)
    return (
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
    )


def _blend(first: np.ndarray, second: np.ndarray, t: float) -> np.ndarray:
    return first.astype(np.float64) * (1 - t) + second.astype(np.float64) * t


def test_the_classical_default_serves_real_video_frames(interpolate_server: LiveServer) -> None:
    """count = 3 between frames t-1 and t+1 of a real clip; the served middle frame is exactly what
    the interpolator measured in bench/ and test_classical makes."""
    frames = read_frames(shared("video/big_buck_bunny.mp4"), 200)
    before, after = frames[196], frames[198]
    response = _post(interpolate_server, before, after, count=3)
    assert response.headers["x-model"] == "interpolate-dis"
    times, made = _frames(response)
    assert times == [0.25, 0.5, 0.75]
    assert all(m.shape == before.shape for m in made)
    np.testing.assert_array_equal(made[1], DisInterpolator().interpolate(before, after, 0.5))
    body = response.json()
    assert (body["model"], body["width"], body["height"]) == ("interpolate-dis", before.shape[1], before.shape[0])
    assert {"decode", "queue", "compute", "encode", "total"} <= set(body["timing"])


@pytest.mark.parametrize("model", ["rife-scalar", "rife-map"])
def test_a_rife_style_model_gets_its_time_step_and_padded_frames(interpolate_server: LiveServer, model: str) -> None:
    first, second = _pair(45, 70)  # not multiples of 32: padded for the model, cropped back
    times, made = _frames(_post(interpolate_server, first, second, model=model, times="0.25,0.6"))
    assert times == [0.25, 0.6]
    for t, frame in zip(times, made):
        assert frame.shape == first.shape
        assert np.abs(frame - _blend(first, second, t)).max() <= 1.0


def test_a_model_without_a_time_step_is_halved_recursively(interpolate_server: LiveServer) -> None:
    first, second = _pair(32, 64)
    times, made = _frames(_post(interpolate_server, first, second, model="rife-middle", count=3))
    assert times == [0.25, 0.5, 0.75]
    for t, frame in zip(times, made):
        assert np.abs(frame - _blend(first, second, t)).max() <= 1.0  # each level rounds to 8 bits
    for params in ({"count": 2}, {"times": "0.3"}):
        refused = _post(interpolate_server, first, second, model="rife-middle", **params)
        assert refused.status_code == 422 and "k/2^d" in refused.json()["error"]["message"], refused.text


def test_jpeg_frames_and_the_default_single_middle_frame(interpolate_server: LiveServer) -> None:
    first, second = _pair(40, 40)
    response = _post(interpolate_server, first, second, model="rife-scalar", format="jpeg", quality=95)
    body = response.json()
    assert [f["time"] for f in body["frames"]] == [0.5]
    assert body["frames"][0]["content_type"] == "image/jpeg"
    assert base64.b64decode(body["frames"][0]["data"])[:2] == b"\xff\xd8"


def test_bad_requests_get_clear_answers_and_the_server_keeps_serving(interpolate_server: LiveServer) -> None:
    url = f"{interpolate_server.url}/v1/interpolate"
    first, second = _pair(40, 60)
    cases = [
        (_post(interpolate_server, first, second[:30], model="rife-scalar"), 422, "same size"),
        (_post(interpolate_server, first, second, count=2, times="0.5"), 422, "not both"),
        (_post(interpolate_server, first, second, times="0.5,1.5"), 422, "strictly between"),
        (_post(interpolate_server, first, second, times="half"), 400, "comma-separated"),
        (_post(interpolate_server, first, second, count=0), 422, "count"),
        (_post(interpolate_server, first, second, model="nope"), 404, "interpolate-dis"),
        (httpx.post(url, files={"frame0": ("a.png", png_bytes(first), "image/png")}, timeout=30), 400, "frame1"),
        (
            httpx.post(url, content=png_bytes(first), headers={"content-type": "image/png"}, timeout=30),
            400,
            "multipart",
        ),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words in response.json()["error"]["message"], response.text
    times, made = _frames(_post(interpolate_server, first, second, model="rife-scalar"))
    assert times == [0.5] and made[0].shape == first.shape

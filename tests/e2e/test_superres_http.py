"""POST /v1/superres through the real server on a loopback port, with a real HTTP client."""

from __future__ import annotations

import asyncio

import cv2
import httpx
import numpy as np
import pytest

from tests.support.data import decode_rgb, png_bytes, read_rgb, shared
from tests.support.live_server import LiveServer

SET5 = ["baby", "bird", "butterfly", "head", "woman"]


@pytest.mark.parametrize("scale", [2, 4])
def test_set5_comes_back_scale_times_larger(server: LiveServer, scale: int) -> None:
    for name in SET5:
        path = shared(f"sr/Set5_LR_bicubic/X{scale}/{name}x{scale}.png")
        lr = read_rgb(path)
        response = httpx.post(
            f"{server.url}/v1/superres",
            params={"scale": scale},
            content=path.read_bytes(),
            headers={"content-type": "image/png"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        assert response.headers["x-model"] == f"tiny-x{scale}"
        out = decode_rgb(response.content)
        assert out.shape == (lr.shape[0] * scale, lr.shape[1] * scale, 3)
        timing = response.headers["server-timing"]
        for part in ("decode", "queue", "compute", "encode"):
            assert f"{part};dur=" in timing


def test_real_photos_in_every_format_and_as_multipart(server: LiveServer) -> None:
    for name in ("bus.jpg", "zidane.jpg", "chelsea.png", "rocket.jpg"):
        path = shared(f"images/{name}")
        source = read_rgb(path)
        for fmt, ctype in (("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")):
            response = httpx.post(
                f"{server.url}/v1/superres",
                params={"scale": 2, "format": fmt},
                files={"image": (name, path.read_bytes(), "application/octet-stream")},
                timeout=120,
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == ctype
            assert decode_rgb(response.content).shape == (source.shape[0] * 2, source.shape[1] * 2, 3)


def test_output_matches_running_the_model_on_the_whole_image(server: LiveServer, tiny_repository: object) -> None:
    """Tiling with overlap >= the receptive field gives the untiled result (no seams)."""
    import onnxruntime as ort

    path = shared("sr/Set5/head.png")  # 280x280: several 64-pixel tiles
    rgb = read_rgb(path)
    session = ort.InferenceSession(str(tiny_repository / "tiny-x2" / "model.onnx"), providers=["CPUExecutionProvider"])  # type: ignore[operator]
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    reference = np.clip(session.run(None, {"input": x})[0][0].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    response = httpx.post(f"{server.url}/v1/superres", params={"scale": 2}, content=path.read_bytes(), timeout=60)
    out = decode_rgb(response.content)
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1


def test_tile_64_and_256_agree_on_a_1024_pixel_image(server: LiveServer) -> None:
    path = shared("sr/Urban100_subset/img_001.png")  # 1024x644
    outputs = []
    for tile in (64, 256):
        response = httpx.post(
            f"{server.url}/v1/superres", params={"scale": 2, "tile": tile}, content=path.read_bytes(), timeout=120
        )
        assert response.status_code == 200, response.text
        outputs.append(decode_rgb(response.content))
    diff = outputs[0].astype(np.float64) - outputs[1].astype(np.float64)
    mse = float(np.mean(diff**2))
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 50


def test_fifty_concurrent_requests_of_mixed_sizes_get_the_bytes_they_get_alone(server: LiveServer) -> None:
    rng = np.random.default_rng(7)
    bodies = []
    for i in range(50):
        h, w = int(rng.integers(1, 200)), int(rng.integers(1, 200))
        bodies.append((png_bytes(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), 2 if i % 2 else 4))

    async def send(client: httpx.AsyncClient, body: bytes, scale: int) -> bytes:
        response = await client.post(f"{server.url}/v1/superres", params={"scale": scale}, content=body, timeout=120)
        assert response.status_code == 200, response.text
        return response.content

    async def scenario() -> list[bytes]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as client:
            return await asyncio.gather(*(send(client, body, scale) for body, scale in bodies))

    together = asyncio.run(scenario())
    with httpx.Client() as client:
        alone = [
            client.post(f"{server.url}/v1/superres", params={"scale": s}, content=b, timeout=60).content
            for b, s in bodies
        ]
    assert together == alone


def test_grayscale_rgba_and_16_bit_inputs(server: LiveServer) -> None:
    gray = cv2.cvtColor(read_rgb(shared("images/astronaut.png")), cv2.COLOR_RGB2GRAY)[:100, :120]
    response = httpx.post(f"{server.url}/v1/superres", content=png_bytes(gray), timeout=60)
    out = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.shape == (200, 240)

    bgra16 = np.zeros((30, 40, 4), np.uint16)
    bgra16[..., :3] = 30000
    bgra16[..., 3] = np.linspace(0, 65535, 40, dtype=np.uint16)[None, :]
    response = httpx.post(f"{server.url}/v1/superres", params={"scale": 4}, content=png_bytes(bgra16), timeout=60)
    out = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.shape == (120, 160, 4) and out.dtype == np.uint8
    assert out[:, 0, 3].max() < 10 and out[:, -1, 3].min() > 245  # alpha gradient upscaled, not lost


def test_models_health_and_metrics(server: LiveServer) -> None:
    models = httpx.get(f"{server.url}/v1/models").json()["models"]
    assert {(m["name"], m["scale"], m["runtime"]) for m in models} == {
        ("tiny-x2", 2, "onnxruntime"),
        ("tiny-x4", 4, "onnxruntime"),
    }
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "alive" and health["process"] == str(server.process.pid)
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    httpx.post(f"{server.url}/v1/superres", content=png_bytes(np.zeros((8, 8, 3), np.uint8)))
    text = httpx.get(f"{server.url}/metrics").text
    for name in (
        'filters_requests_total{model="tiny-x2",status="200"}',
        "filters_queue_seconds_bucket",
        "filters_compute_seconds_bucket",
        "filters_batch_size_bucket",
        "filters_queue_depth",
        "filters_requests_in_flight",
    ):
        assert name in text


def test_openapi_documents_every_parameter_and_error(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operation = spec["paths"]["/v1/superres"]["post"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"scale", "model", "format", "quality", "tile", "x-request-timeout"} <= set(params)
    assert all(p.get("description") for p in params.values())
    assert {"200", "400", "404", "413", "415", "422", "429", "503", "504"} <= set(operation["responses"])
    assert {"image/*", "multipart/form-data"} <= set(operation["requestBody"]["content"])
    assert httpx.get(f"{server.url}/docs").status_code == 200

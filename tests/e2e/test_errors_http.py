"""Bad input answers a clear 4xx as JSON, and the server keeps serving after each."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.support.data import png_bytes, shared
from tests.support.live_server import LiveServer, start_server
from tests.unit.test_images import png_header_only

GOOD = png_bytes(np.full((16, 16, 3), 100, np.uint8))


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    assert "Traceback" not in response.text
    return str(body["error"]["message"])


def _still_serving(server: LiveServer) -> None:
    response = httpx.post(f"{server.url}/v1/superres", content=GOOD, timeout=30)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("params", "headers", "body", "status", "says"),
    [
        ({}, {"content-type": "text/plain"}, b"hello", 415, "not an image"),
        ({}, {"content-type": "application/json"}, b'{"image": 1}', 415, "not an image"),
        ({}, {}, b"", 400, "no body"),
        ({}, {"content-type": "image/png"}, GOOD[:60], 400, "could not be decoded"),
        ({}, {"content-type": "image/png"}, png_header_only(40_000, 40_000), 413, "40000x40000"),
        ({"scale": 3}, {}, GOOD, 404, "loaded scales: [2, 4]"),
        ({"model": "nope"}, {}, GOOD, 404, "no model named 'nope'"),
        ({"model": "tiny-x2", "scale": 4}, {}, GOOD, 422, "upscales x2, not x4"),
        ({"format": "gif"}, {}, GOOD, 422, "'format'"),
        ({"tile": 8}, {}, GOOD, 422, "at least 9"),
        ({"format": "png", "quality": 50}, {}, GOOD, 422, "zlib level"),
        ({"scale": "two"}, {}, GOOD, 422, "'scale'"),
    ],
)
def test_bad_requests(
    server: LiveServer, params: dict[str, object], headers: dict[str, str], body: bytes, status: int, says: str
) -> None:
    response = httpx.post(f"{server.url}/v1/superres", params=params, headers=headers, content=body, timeout=30)
    assert says in _error(response, status)
    _still_serving(server)


def test_multipart_without_the_image_field(server: LiveServer) -> None:
    response = httpx.post(f"{server.url}/v1/superres", files={"picture": ("a.png", GOOD, "image/png")}, timeout=30)
    assert "no field 'image'" in _error(response, 400)
    _still_serving(server)


def test_body_over_the_limit_is_413(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    small = start_server(
        server.repository, tmp_path_factory.mktemp("small") / "log", env={"FILTERS_LIMITS__MAX_BODY_BYTES": "4096"}
    )
    try:
        big = shared("images/bus.jpg").read_bytes()
        assert "limit of 4096 bytes" in _error(httpx.post(f"{small.url}/v1/superres", content=big, timeout=30), 413)
        assert "limit of 4096 bytes" in _error(
            httpx.post(f"{small.url}/v1/superres", files={"image": ("bus.jpg", big, "image/jpeg")}, timeout=30), 413
        )

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"\x00" * 1000

        assert "limit of 4096 bytes" in _error(
            httpx.post(f"{small.url}/v1/superres", content=chunks(), timeout=30), 413
        )
        _still_serving(small)
    finally:
        small.stop()


def test_unknown_route_is_a_json_404(server: LiveServer) -> None:
    _error(httpx.get(f"{server.url}/v1/nothing"), 404)

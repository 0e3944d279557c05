"""Hostile HTTP requests against the real server: mutated images, broken multipart bodies, odd
parameters and headers. Every answer is a 2xx or a 4xx in our JSON shape (or 503/504), never a
stack trace or a path, and the server keeps serving. Derandomized (same cases every CI run); the
long random run is `bench/fuzz_campaign.py`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.generators import headers, multipart_body, mutated_image, query_params, seed_images
from tests.fuzz.oracle import judge_http
from tests.support.live_server import LiveServer

SEEDS = seed_images()
HTTP_PROPERTY = settings(
    derandomize=True, database=None, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _judge(response: httpx.Response) -> str:
    return judge_http(response.status_code, response.content, response.headers.get("content-type", ""))


@HTTP_PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_mutated_image_bodies(client: httpx.Client, rng: random.Random) -> None:
    _, data = mutated_image(SEEDS, rng)
    _judge(client.post("/v1/superres", content=data, headers={"content-type": "application/octet-stream"}))


@HTTP_PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_multipart_bodies(client: httpx.Client, rng: random.Random) -> None:
    image = rng.choice([SEEDS["png"], mutated_image(SEEDS, rng)[1]])
    content_type, body = multipart_body(image, rng)
    _judge(client.post("/v1/superres", content=body, headers={"content-type": content_type}))


@HTTP_PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_parameters_and_headers(client: httpx.Client, rng: random.Random) -> None:
    raw_headers = {k: v.encode("utf-8") for k, v in headers(rng).items()}
    _judge(client.post("/v1/superres", params=query_params(rng), content=SEEDS["jpeg"], headers=raw_headers))


@pytest.mark.parametrize("content_type", ["image/png", "multipart/form-data; boundary=b"])
def test_an_endless_upload_is_cut_at_the_body_limit(target: LiveServer, content_type: str) -> None:
    """A chunked body that never ends: 413 once past the limit, and the connection is closed
    (found by the campaign: multipart had no total limit, and refused bodies were read on)."""
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG'
        while sent < 64 * 2**20:  # a bound for the test itself; the server stops far earlier
            sent += 65536
            yield bytes(65536)

    try:
        response = httpx.post(
            f"{target.url}/v1/superres", content=endless(), headers={"content-type": content_type}, timeout=60
        )
        assert _judge(response) == "413 payload_too_large"
    except httpx.TransportError:
        pass  # the server answered 413 and closed while we were still writing
    assert sent < 64 * 2**20, "the server read the whole endless body"
    assert httpx.get(f"{target.url}/healthz").status_code == 200


def test_still_serving_after_the_fuzzing(client: httpx.Client, target: LiveServer) -> None:
    response = client.post("/v1/superres", content=SEEDS["png"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert "Traceback" not in target.log()

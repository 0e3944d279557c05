"""Shedding by deadline on the real server: once the model's queue holds more work than a new
request's deadline allows, that request is refused at once with 429 (before it runs), while
requests with a long deadline are still admitted and finish with 200."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest

from tests.support.data import png_bytes
from tests.support.live_server import LiveServer, start_server
from tests.support.tiny_models import write_sr_entry

MODEL = "shed-x2"
WARMUP = png_bytes(np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8))  # 16 tiles
BLOCKER = png_bytes(np.random.default_rng(2).integers(0, 256, (1200, 1200, 3), dtype=np.uint8))  # 2500 tiles
SMALL = png_bytes(np.random.default_rng(3).integers(0, 256, (24, 24, 3), dtype=np.uint8))  # 1 tile


@pytest.fixture(scope="module")
def shedding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One slot on one thread, batches of one 32x32 tile: a big image is a long queue."""
    root = tmp_path_factory.mktemp("shed-repository")
    write_sr_entry(root, MODEL, 2, features=48, tile_size=32, overlap=4, max_batch_size=1, default=True)
    live = start_server(root, tmp_path_factory.mktemp("shed-logs") / "server.log", env={"FILTERS_CPU_THREADS": "1"})
    yield live
    live.stop()


def _metric(server: LiveServer, name: str, labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _queued(server: LiveServer) -> float:
    return _metric(server, "filters_queue_depth", f'model="{MODEL}"')


async def _poll(condition: Callable[[], bool], seconds: float = 120.0) -> None:
    """Wait until `condition` holds (a bound on the wait, not a timed assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


def test_a_request_whose_deadline_the_queue_outlasts_is_refused_at_once(shedding: LiveServer) -> None:
    warm = httpx.post(f"{shedding.url}/v1/superres", content=WARMUP, timeout=120)
    assert warm.status_code == 200, "16 batches measured: the service-time estimate is warm"
    dropped = f'model="{MODEL}",reason="deadline_unreachable"'
    refused_before = _metric(shedding, "filters_dropped_total", dropped)

    async def scenario() -> tuple[httpx.Response, httpx.Response, float, httpx.Response]:
        async with httpx.AsyncClient(base_url=shedding.url, timeout=300) as client:
            blocker = asyncio.create_task(client.post("/v1/superres", content=BLOCKER))
            await _poll(lambda: _queued(shedding) >= 1000)
            late = await client.post("/v1/superres", content=SMALL, headers={"x-request-timeout": "0.2"})
            still_queued = _queued(shedding)
            patient = await client.post("/v1/superres", content=SMALL, headers={"x-request-timeout": "300"})
            return late, patient, still_queued, await blocker

    late, patient, still_queued, blocker = asyncio.run(scenario())
    assert late.status_code == 429 and late.json()["error"]["code"] == "overloaded"
    message = late.json()["error"]["message"]
    assert f"model '{MODEL}' has about" in message and "0.2 s deadline" in message, message
    assert "X-Request-Timeout" in message
    assert 1 <= int(late.headers["retry-after"]) <= 60
    assert still_queued > 0, "the refusal came while the work ahead was still queued: before it could run"
    assert _metric(shedding, "filters_dropped_total", dropped) == refused_before + 1
    assert patient.status_code == 200 and blocker.status_code == 200, "long deadlines are admitted and finish"
    assert _metric(shedding, "filters_dropped_total", f'model="{MODEL}",reason="deadline"') == 0
    assert httpx.post(f"{shedding.url}/v1/superres", content=SMALL, timeout=60).status_code == 200

"""Overload (429), deadlines (504), clients that go away, and start-up with a bad config."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.data import png_bytes
from tests.support.live_server import REPO_ROOT, LiveServer, start_server
from tests.support.tiny_models import write_sr_entry

MEDIUM = png_bytes(np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8))
SMALL = png_bytes(np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One slot, batches of one, two requests admitted at a time: easy to overload. Shedding by
    deadline is off, so that a request with a short deadline waits in the queue (and gets 504)
    instead of being refused at once (tests/reliability/test_deadline_admission.py)."""
    root = tmp_path_factory.mktemp("slow-repository")
    write_sr_entry(root, "slow-x2", 2, features=48, max_batch_size=1, max_queued_requests=2, overlap=4)
    env = {"FILTERS_CPU_THREADS": "1", "FILTERS_SHED_BY_DEADLINE": "false"}
    live = start_server(root, tmp_path_factory.mktemp("slow-logs") / "server.log", env=env)
    yield live
    live.stop()


def _metric(server: LiveServer, name: str, labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_overload_answers_429_with_retry_after_and_every_request_gets_one_answer(slow_server: LiveServer) -> None:
    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=30), timeout=120) as client:
            return await asyncio.gather(
                *(client.post(f"{slow_server.url}/v1/superres", content=MEDIUM) for _ in range(30))
            )

    responses = asyncio.run(scenario())
    statuses = [r.status_code for r in responses]
    assert len(responses) == 30 and set(statuses) <= {200, 429}
    assert statuses.count(429) > 0 and statuses.count(200) >= 2
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "overloaded"
    assert httpx.post(f"{slow_server.url}/v1/superres", content=SMALL, timeout=60).status_code == 200


def test_a_request_whose_deadline_passes_in_the_queue_gets_504_without_running(slow_server: LiveServer) -> None:
    big = png_bytes(np.random.default_rng(3).integers(0, 256, (1500, 1500, 3), dtype=np.uint8))
    same_shape = png_bytes(np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    before = _metric(slow_server, "filters_dropped_total", 'model="slow-x2",reason="deadline"')

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            blocker = asyncio.create_task(
                client.post(f"{slow_server.url}/v1/superres", params={"tile": 32}, content=big)
            )
            await asyncio.sleep(0.3)
            # same 32x32 tile shape: it queues behind the blocker's tiles in the same batcher
            late = await client.post(
                f"{slow_server.url}/v1/superres", content=same_shape, headers={"x-request-timeout": "0.2"}
            )
            return await blocker, late

    blocker, late = asyncio.run(scenario())
    assert blocker.status_code == 200
    assert late.status_code == 504 and late.json()["error"]["code"] == "deadline_exceeded"
    assert _metric(slow_server, "filters_dropped_total", 'model="slow-x2",reason="deadline"') == before + 1
    assert httpx.post(f"{slow_server.url}/v1/superres", content=SMALL, timeout=60).status_code == 200


def test_work_of_a_client_that_went_away_is_dropped(slow_server: LiveServer) -> None:
    """Measured: once the client is gone, (almost) no more tiles of its request run."""
    huge = png_bytes(np.random.default_rng(4).integers(0, 256, (1500, 1500, 3), dtype=np.uint8))
    tiles = 47 * 47  # 1500 px, tile 40, overlap 4: 47 tiles per side
    label = 'model="slow-x2"'
    before = _metric(slow_server, "filters_items_executed_total", label)
    port = int(slow_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = f"POST /v1/superres?tile=40 HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {len(huge)}\r\n\r\n"
        sock.sendall(head.encode() + huge)
        time.sleep(0.3)
    at_close = _metric(slow_server, "filters_items_executed_total", label) - before
    settled = None
    for _ in range(50):  # wait until the executed count stops moving
        time.sleep(0.2)
        now = _metric(slow_server, "filters_items_executed_total", label)
        if now == settled:
            break
        settled = now
    executed = (settled or 0) - before
    assert 0 < at_close < tiles, "the request should have been running when the client left"
    assert executed - at_close < (tiles - at_close) / 2, f"{executed - at_close} tiles ran after the client left"
    assert executed < tiles
    assert _metric(slow_server, "filters_dropped_total", 'model="slow-x2",reason="client_gone"') >= 1
    assert httpx.post(f"{slow_server.url}/v1/superres", content=SMALL, timeout=60).status_code == 200


def test_a_bad_model_config_stops_start_up_naming_file_and_field(tmp_path: Path) -> None:
    folder = write_sr_entry(tmp_path, "broken-x2", 2)
    config = folder / "model.toml"
    config.write_text(config.read_text().replace("max_batch_size = 8", "max_batch_size = -3"))
    result = subprocess.run(
        [sys.executable, "-m", "service"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"FILTERS_MODEL_REPOSITORY": str(tmp_path), "FILTERS_PORT": "0", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert str(config) in result.stderr and "batching.max_batch_size" in result.stderr

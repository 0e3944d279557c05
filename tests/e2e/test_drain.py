"""SIGTERM: readiness 503 at once, new work refused, in-flight work finishes, then exit 0."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.data import png_bytes
from tests.support.live_server import start_server
from tests.support.tiny_models import write_sr_entry


def test_sigterm_drains_in_flight_work_and_refuses_new(tmp_path: Path) -> None:
    write_sr_entry(tmp_path / "repo", "drain-x2", 2, features=48, max_batch_size=1)
    server = start_server(tmp_path / "repo", tmp_path / "server.log", env={"FILTERS_CPU_THREADS": "1", "FILTERS_DRAIN_ANNOUNCE_S": "0.5"})
    busy = png_bytes(np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8))
    small = png_bytes(np.zeros((8, 8, 3), np.uint8))

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            in_flight = [asyncio.create_task(client.post(f"{server.url}/v1/superres", params={"tile": 32}, content=busy)) for _ in range(3)]
            await asyncio.sleep(0.4)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.1)
            ready = await client.get(f"{server.url}/readyz")
            refused = await client.post(f"{server.url}/v1/superres", content=small)
            return list(await asyncio.gather(*in_flight)), ready, refused

    try:
        finished, ready, refused = asyncio.run(scenario())
        assert [r.status_code for r in finished] == [200, 200, 200]
        assert ready.status_code == 503 and ready.json()["reason"] == "draining"
        assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
        assert server.process.wait(30) == 0
    finally:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)
    assert "drained after" in server.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_idle_server_exits_promptly_on_sigterm(tmp_path: Path, sig: int) -> None:
    write_sr_entry(tmp_path / "repo", "idle-x2", 2)
    server = start_server(tmp_path / "repo", tmp_path / "server.log")
    server.process.send_signal(sig)
    assert server.process.wait(15) == 0

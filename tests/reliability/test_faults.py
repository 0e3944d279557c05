"""Faults, end to end on the real server with test-only fault injection (FILTERS_FAULT_INJECTION=1,
service/runtimes/fault_injection.py): an exception in the runtime fails only its batch; an
unrecoverable one restarts the slot while readiness answers 503; a corrupt model file keeps the
server (or the restarting slot) unready with a clear reason and no path, and it retries.

Client disconnects and SIGTERM drains are tested in tests/e2e/test_overload_http.py and
tests/e2e/test_drain.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.runtimes.fault_injection import BREAK_SLOT_RGB, FAIL_BATCH_RGB
from tests.support.data import png_bytes
from tests.support.live_server import REPO_ROOT, LiveServer, free_port, start_server
from tests.support.tiny_models import write_sr_entry

NORMAL = [png_bytes(np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)) for i in range(6)]


def _solid(rgb: tuple[int, int, int]) -> bytes:
    return png_bytes(np.full((32, 32, 3), rgb[::-1], np.uint8))  # png_bytes takes BGR


FAIL_BATCH = _solid(FAIL_BATCH_RGB)
BREAK_SLOT = _solid(BREAK_SLOT_RGB)


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    """Poll `condition` until it holds (a bound on the wait, not a timed assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One slot, batches of one: a poisoned tile shares its batch with nobody."""
    root = tmp_path_factory.mktemp("faulty-repository")
    write_sr_entry(root, "faulty-x2", 2, max_batch_size=1, default=True)
    env = {"FILTERS_FAULT_INJECTION": "1", "FILTERS_CPU_THREADS": "1", "FILTERS_LOG_LEVEL": "info"}
    live = start_server(root, tmp_path_factory.mktemp("faulty-logs") / "server.log", env=env)
    yield live
    live.stop()


def _ready(server: LiveServer) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=10)


def test_a_runtime_exception_fails_only_its_batch(faulty: LiveServer) -> None:
    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=faulty.url, timeout=60) as client:
            bodies = [*NORMAL[:3], FAIL_BATCH, *NORMAL[3:]]
            return list(await asyncio.gather(*(client.post("/v1/superres", content=b) for b in bodies)))

    answers = asyncio.run(scenario())
    failed = answers.pop(3)
    assert failed.status_code == 500 and failed.json()["error"]["code"] == "inference_failed"
    assert "faulty-x2" in failed.json()["error"]["message"]
    assert [a.status_code for a in answers] == [200] * 6
    assert _ready(faulty).status_code == 200, "an ordinary failure does not restart anything"
    assert "restarting it" not in faulty.log()


def test_an_unrecoverable_error_restarts_the_slot_and_readiness_follows(faulty: LiveServer) -> None:
    before = faulty.log().count("slot 0 restarted")
    broken = httpx.post(f"{faulty.url}/v1/superres", content=BREAK_SLOT, timeout=60)
    assert broken.status_code == 503 and broken.json()["error"]["code"] == "worker_failed"
    assert "simulated CUDA error" in broken.json()["error"]["message"]
    assert _wait_for(lambda: faulty.log().count("slot 0 restarted") > before)
    assert _wait_for(lambda: _ready(faulty).status_code == 200)
    assert httpx.post(f"{faulty.url}/v1/superres", content=NORMAL[0], timeout=60).status_code == 200


def test_a_slot_whose_reload_fails_keeps_readiness_503_and_retries(faulty: LiveServer) -> None:
    """The "corrupt engine" case: the model file is broken when the slot restarts."""
    model = faulty.repository / "faulty-x2" / "model.onnx"
    good = model.read_bytes()
    model.write_bytes(b"this is not an onnx model" * 10)
    try:
        broken = httpx.post(f"{faulty.url}/v1/superres", content=BREAK_SLOT, timeout=60)
        assert broken.status_code == 503
        # the answer is sent after the slot is marked restarting: readiness is already 503
        unready = _ready(faulty)
        assert unready.status_code == 503 and unready.json()["reason"] == "restarting a broken execution slot"
        assert _wait_for(lambda: faulty.log().count("failed to restart; retrying") >= 2)
        assert _ready(faulty).status_code == 503, "still unready while the file is corrupt"
        assert _grpc_health(faulty) == health_pb2.HealthCheckResponse.NOT_SERVING
        waiting = httpx.post(f"{faulty.url}/v1/superres", content=NORMAL[1], headers={"x-request-timeout": "1"})
        assert waiting.status_code == 504, "no slot to run on: the request waits, then its deadline passes"
    finally:
        model.write_bytes(good)
    assert _wait_for(lambda: _ready(faulty).status_code == 200)
    assert httpx.post(f"{faulty.url}/v1/superres", content=NORMAL[2], timeout=60).status_code == 200
    assert "INVALID_PROTOBUF" in faulty.log(), "the log keeps the full reason"


def _grpc_health(server: LiveServer) -> int:
    """The gRPC health status, once it has followed readiness (it polls it every 0.1 s)."""
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def status() -> int:
            return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status)

        _wait_for(lambda: status() != health_pb2.HealthCheckResponse.SERVING, seconds=10)
        return status()


def test_a_corrupt_model_at_start_up_keeps_the_server_unready_with_a_clear_reason(tmp_path: Path) -> None:
    folder = write_sr_entry(tmp_path / "repository", "corrupt-x2", 2, default=True)
    (folder / "model.onnx").write_bytes(b"\x08\x07garbage" * 50)
    port = free_port()
    env = {"FILTERS_MODEL_REPOSITORY": str(folder.parent), "FILTERS_PORT": str(port), "FILTERS_GRPC_PORT": "0"}
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=REPO_ROOT, env={**_base_env(), **env}, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_for(lambda: _reason(url) is not None and "failed" in str(_reason(url)))
        reason = str(_reason(url))
        assert "model loading failed" in reason and "cannot load model.onnx for model 'corrupt-x2'" in reason
        assert str(tmp_path) not in reason and "/" not in reason.replace("model.onnx", "")
        refused = httpx.post(f"{url}/v1/superres", content=NORMAL[0], timeout=30)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_ready"
        assert str(tmp_path) not in refused.text
        assert httpx.get(f"{url}/healthz").status_code == 200 and process.poll() is None, "alive, just unready"
    finally:
        process.terminate()
        process.wait(30)
    assert str(folder / "model.onnx") in (tmp_path / "server.log").read_text(), "the log keeps the path"


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FILTERS_")} | {"PYTHONUNBUFFERED": "1"}


def _reason(url: str) -> str | None:
    try:
        answer = httpx.get(f"{url}/readyz", timeout=2)
    except httpx.TransportError:
        return None
    return None if answer.status_code == 200 else str(answer.json().get("reason"))


def test_fault_injection_is_off_unless_asked_for(server: LiveServer) -> None:
    assert httpx.post(f"{server.url}/v1/superres", content=BREAK_SLOT, timeout=60).status_code == 200
    assert httpx.post(f"{server.url}/v1/superres", content=FAIL_BATCH, timeout=60).status_code == 200

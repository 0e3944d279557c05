"""FILTERS_WORKERS > 1: several server processes on one port, restarted when one dies, all
drained by one SIGTERM to the supervisor (service/processes.py)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.data import decode_rgb, png_bytes
from tests.support.live_server import LiveServer, start_server


@pytest.fixture(scope="module")
def two_processes(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("workers") / "server.log"
    live = start_server(tiny_repository, log, {"FILTERS_WORKERS": "2"})
    yield live
    live.stop()


def process_ids(server: LiveServer, tries: int = 60, dying: bool = False) -> set[str]:
    """The processes that answer /healthz over fresh connections (each its own TCP connection).

    With `dying`, a reset connection is skipped: with SO_REUSEPORT the kernel may have queued it on
    the listening socket of the process that was just killed, and that queue is reset with it."""
    seen: set[str] = set()
    for _ in range(tries):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            try:
                answer = client.get("/healthz")
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if dying:
                    continue
                raise
            if answer.status_code == 200:
                seen.add(answer.json()["process"])
    return seen


def wait_until_ready_everywhere(server: LiveServer, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        codes = {httpx.get(f"{server.url}/readyz", timeout=10).status_code for _ in range(20)}
        if codes == {200}:
            return
        time.sleep(0.2)
    raise AssertionError("not every worker process became ready")


def test_connections_are_spread_over_the_processes_and_each_serves(two_processes: LiveServer) -> None:
    wait_until_ready_everywhere(two_processes)
    assert len(process_ids(two_processes)) == 2
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for _ in range(6):
        with httpx.Client(base_url=two_processes.url, timeout=30) as client:
            answer = client.post("/v1/superres?scale=2", content=png_bytes(rgb), headers={"content-type": "image/png"})
            assert answer.status_code == 200, answer.text
            assert decode_rgb(answer.content).shape == (48, 64, 3)


def test_a_killed_process_is_replaced_and_the_port_keeps_serving(two_processes: LiveServer) -> None:
    wait_until_ready_everywhere(two_processes)
    before = process_ids(two_processes)
    victim = int(sorted(before)[0])
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the other process answers meanwhile; the new one joins
        now = process_ids(two_processes, tries=20, dying=True)
        if len(now) == 2 and str(victim) not in now:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"process {victim} was not replaced: {now}")
    wait_until_ready_everywhere(two_processes)


def test_sigterm_to_the_supervisor_drains_every_process(tiny_repository: Path, tmp_path: Path) -> None:
    live = start_server(tiny_repository, tmp_path / "server.log", {"FILTERS_WORKERS": "2"})
    try:
        wait_until_ready_everywhere(live)
        children = process_ids(live)
        live.process.send_signal(signal.SIGTERM)
        assert live.process.wait(60) == 0
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)
    finally:
        live.stop()


def test_more_workers_need_fixed_ports(tiny_repository: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    env = dict(os.environ) | {
        "FILTERS_WORKERS": "2",
        "FILTERS_PORT": "0",
        "FILTERS_MODEL_REPOSITORY": str(tiny_repository),
    }
    done = subprocess.run([sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "fixed ports" in done.stderr

"""What the overload and soak benchmarks share: the server they start (the bundled model, or a
tiny one), its resident memory, one request, and open-loop arrivals."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.bench.loadgen import percentile  # noqa: E402
from tests.support.live_server import LiveServer, start_server  # noqa: E402
from tests.support.tiny_models import write_sr_entry  # noqa: E402

BUNDLED = ROOT / "engines"


@dataclass(frozen=True)
class Target:
    """The server under load and what to send it."""

    server: LiveServer
    model: str
    body: bytes
    description: str


def start_target(
    model: str, tiny: bool, size: tuple[int, int], scratch: Path, env: dict[str, str], max_queued: int | None = None
) -> Target:
    """The real server on the bundled model `model` (engines/), or on a tiny test model if `tiny` or
    the bundle lacks it; `body` is a PNG of a photo crop (noise if the shared data is absent).
    `max_queued`: a copy of the bundled model with this `max_queued_requests`."""
    if not tiny and (BUNDLED / model / "model.toml").is_file():
        repository, description = BUNDLED, f"bundled {model} (engines/{model})"
        env = {"FILTERS_MODELS": f'["{model}"]', **env}
        if max_queued is not None:
            repository = scratch / "repository"
            shutil.copytree(BUNDLED / model, repository / model)
            config = repository / model / "model.toml"
            text = re.sub(r"(?m)^max_queued_requests = \d+", f"max_queued_requests = {max_queued}", config.read_text())
            config.write_text(text)
            description += f", max_queued_requests = {max_queued}"
    else:
        repository, model = scratch / "repository", "tiny-x2"
        write_sr_entry(repository, model, 2, default=True, features=32)
        description = "tiny-x2 (tests/support/tiny_models.py, 32 features)"
    server = start_server(repository, scratch / "server.log", env={"FILTERS_LOG_LEVEL": "warning", **env})
    return Target(server, model, photo_png(*size), description)


def photo_png(width: int, height: int) -> bytes:
    """A width x height PNG: a crop of a shared test photo if present, else smooth noise."""
    photo = ROOT.parent / "shared" / "data" / "images" / "astronaut.png"
    pixels = cv2.imread(str(photo), cv2.IMREAD_COLOR) if photo.is_file() else None
    if pixels is None or pixels.shape[0] < height or pixels.shape[1] < width:
        small = np.random.default_rng(0).integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        pixels = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(pixels[:height, :width]))
    assert ok
    return buffer.tobytes()


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Answer:
    """One request's outcome as the client saw it."""

    status: int  # 0: transport error
    seconds: float
    sent_at: float


def sender(
    client: httpx.AsyncClient, target: Target, headers: dict[str, str] | None = None
) -> Callable[[], Awaitable[Answer]]:
    """A function that sends one superres request and reports how it went."""

    async def send() -> Answer:
        started = time.perf_counter()
        try:
            response = await client.post(
                f"{target.server.url}/v1/superres",
                content=target.body,
                headers={"content-type": "image/png", **(headers or {})},
            )
            status = response.status_code if response.status_code != 200 or response.content else -1
        except httpx.TransportError:
            status = 0
        return Answer(status, time.perf_counter() - started, started)

    return send


async def open_loop(send: Callable[[], Awaitable[Answer]], rate: float, duration_s: float) -> list[Answer]:
    """Requests at `rate` per second for `duration_s`, whether or not earlier ones have answered."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks: list[asyncio.Task[Answer]] = []
    index = 0
    while loop.time() < started + duration_s:
        due = started + index / rate
        await asyncio.sleep(max(0.0, due - loop.time()))  # yields even when behind: answers get read
        tasks.append(loop.create_task(send()))
        index += 1
    return list(await asyncio.gather(*tasks))


async def sample_rss(pid: int, every_s: float, into: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """Append (seconds since start, RSS MiB) every `every_s` until `stop` is set."""
    started = time.perf_counter()
    while not stop.is_set():
        into.append((time.perf_counter() - started, rss_mb(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def latency_ms(answers: list[Answer], status: int = 200) -> tuple[float, float]:
    """(p50, p99) in ms of the answers with `status`."""
    values = sorted(a.seconds for a in answers if a.status == status)
    return percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")

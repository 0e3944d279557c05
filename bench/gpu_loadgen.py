"""Closed-loop HTTP load over several processes, keeping each answer's `Server-Timing` stages.

One client process can become the bottleneck at high concurrency with multi-megabyte answers, so
the clients are spread over `procs` processes (spawned: nothing of the parent's CUDA state is
inherited). All processes start together at `start_at` and stop sending at `stop_at` (wall
clock), so samplers can be read over exactly that window. Throughput counts answers completed
inside the window; latency percentiles cover every request sent inside it, also those answered
late (`late` counts them), so a stuck request shows in the p99 instead of vanishing.
Used by bench/gpu_bench.py; light imports only.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import time
from typing import Any

import httpx

SPAWN_MARGIN_S = 3.0  # time for the client processes to start before the window opens


def _stages(header: str) -> dict[str, float]:
    """`decode;dur=1.2, queue;dur=3.4` -> {"decode": 1.2, "queue": 3.4}."""
    stages: dict[str, float] = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name and rest:
            stages[name] = stages.get(name, 0.0) + float(rest)
    return stages


async def _clients(
    url: str, bodies: list[bytes], params: dict[str, str], headers: dict[str, str], clients: int, offset: int,
    start_at: float, stop_at: float,
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []

    async def client(index: int, http: httpx.AsyncClient) -> None:
        i = index
        while time.time() < stop_at:
            body = bodies[i % len(bodies)]
            i += clients
            sent = time.time()
            record: dict[str, Any] = {"sent": sent}
            try:
                response = await http.post(f"{url}/v1/superres", params=params, content=body, headers=headers)
                record.update(code=str(response.status_code), bytes=len(response.content))
                record["stages"] = _stages(response.headers.get("server-timing", ""))
            except httpx.HTTPError as exc:
                record.update(code=type(exc).__name__, bytes=0, stages={})
            record["done"] = time.time()
            records.append(record)

    await asyncio.sleep(max(0.0, start_at - time.time()))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits, trust_env=False) as http:  # no proxy for loopback
        await asyncio.gather(*(client(offset + k, http) for k in range(clients)))
    return records


def _process(args: tuple[Any, ...], queue: Any) -> None:
    queue.put(asyncio.run(_clients(*args)))


def run_load(
    url: str, bodies: list[bytes], params: dict[str, str], concurrency: int, seconds: float, procs: int = 8,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """`concurrency` closed-loop clients for `seconds` (optionally with an X-Request-Timeout)."""
    procs = max(1, min(procs, concurrency))
    shares = [concurrency // procs + (1 if p < concurrency % procs else 0) for p in range(procs)]
    headers = {"content-type": "image/png"} | ({"x-request-timeout": str(timeout_s)} if timeout_s else {})
    start_at = time.time() + SPAWN_MARGIN_S
    stop_at = start_at + seconds
    context = mp.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_process, args=((url, bodies, params, headers, share, p, start_at, stop_at), queue))
        for p, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    records = [r for _ in workers for r in queue.get(timeout=seconds + 900)]
    for worker in workers:
        worker.join()
    return summarize(records, concurrency, seconds, start_at, stop_at)


def summarize(
    records: list[dict[str, Any]], concurrency: int, seconds: float, start_at: float, stop_at: float
) -> dict[str, Any]:
    """Throughput inside the window; latencies of every request sent in it; mean Server-Timing stages."""
    ok = [r for r in records if r["code"] == "200"]
    latencies = sorted(r["done"] - r["sent"] for r in ok)
    in_window = [r for r in ok if r["done"] <= stop_at]
    codes: dict[str, int] = {}
    for r in records:
        codes[r["code"]] = codes.get(r["code"], 0) + 1
    names = sorted({n for r in ok for n in r["stages"]})

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

    late = [r for r in ok if r["done"] > stop_at]
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "window": [start_at, stop_at],
        "ok": len(in_window),
        "images_per_s": round(len(in_window) / seconds, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else float("nan"),
        "late": len(late),
        "codes": codes,
        "mb_per_s": round(sum(r["bytes"] for r in in_window) / seconds / 1e6, 1),
        "stages_ms": {n: round(statistics.fmean(r["stages"].get(n, 0.0) for r in ok), 2) for n in names} if ok else {},
    }

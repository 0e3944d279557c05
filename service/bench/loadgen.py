"""Closed-loop load: C clients, each sending its next request as soon as the last one answered."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

SendOne = Callable[[int], Awaitable[bool]]


@dataclass(frozen=True)
class RunResult:
    """One load level: throughput, latency percentiles, errors."""

    target: str
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    throughput_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values))) - 1))
    return sorted_values[index]


async def closed_loop(target: str, send: SendOne, concurrency: int, duration_s: float) -> RunResult:
    """Run `concurrency` clients for `duration_s`; `send(i)` sends request i and says if it succeeded."""
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + duration_s

    async def client() -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop_at:
            index = counter
            counter += 1
            sent = time.perf_counter()
            try:
                ok = await send(index)
            except Exception:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return RunResult(
        target=target,
        concurrency=concurrency,
        duration_s=elapsed,
        requests=len(latencies),
        errors=errors,
        throughput_per_s=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p90_ms=percentile(latencies, 0.90) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        mean_ms=statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    )

"""Soak: a long run at about 70% of the measured capacity, latency and memory per minute.

    python bench/soak.py --minutes 30                 # the bundled sr-x2 (engines/), 128x96 PNGs
    python bench/soak.py --minutes 3 --tiny           # a tiny test model, for a quick check

Self-contained: starts the server, measures its capacity (closed loop), then runs paced
closed-loop clients (each sends, waits for the answer, sleeps until its next turn) at `--load`
of that capacity, sampling p50/p99 latency and the server's resident memory every minute.
Claims checked (docs/reliability.md): zero errors, stable latency, RSS drift under 5% (the last
minute against the first, after warm-up). Writes bench/results/soak.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from load_support import Answer, Target, rss_mb, sender, start_target  # isort: skip
from service.bench.loadgen import closed_loop, percentile  # noqa: E402
from service.bench.report import machine_description  # noqa: E402


@dataclass
class Minute:
    """What one minute of the soak looked like."""

    index: int
    answers: list[Answer] = field(default_factory=list)
    rss_mb: float = float("nan")

    @property
    def errors(self) -> int:
        return sum(1 for a in self.answers if a.status != 200)

    def row(self) -> str:
        values = sorted(a.seconds for a in self.answers if a.status == 200)
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        rate = len(self.answers) / 60.0
        counts = f"| {self.index + 1} | {len(self.answers)} | {rate:.2f} | {self.errors} "
        return counts + f"| {p50:.0f} | {p99:.0f} | {self.rss_mb:.1f} |"


async def capacity(target: Target, concurrency: int, seconds: float) -> float:
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client:
        send = sender(client, target)

        async def ok(_: int) -> bool:
            return (await send()).status == 200

        await closed_loop("warmup", ok, concurrency, min(15.0, seconds / 2))
        result = await closed_loop("capacity", ok, concurrency, seconds)
    if result.errors:
        raise SystemExit(f"{result.errors} errors while measuring capacity")
    return result.throughput_per_s


async def soak(target: Target, rate: float, clients: int, minutes: int) -> list[Minute]:
    """`clients` paced closed-loop clients sharing `rate` requests/s, for `minutes`."""
    records = [Minute(i) for i in range(minutes)]
    started = time.perf_counter()
    end = started + minutes * 60
    interval = clients / rate

    async def client(offset: float, send: Callable[[], Awaitable[Answer]]) -> None:
        turn = started + offset
        while turn < end:
            await asyncio.sleep(max(0.0, turn - time.perf_counter()))
            answer = await send()
            minute = int((answer.sent_at - started) // 60)
            if minute < minutes:
                records[minute].answers.append(answer)
            turn = max(turn + interval, time.perf_counter())  # closed loop: never two in flight per client

    async def memory() -> None:
        for minute in range(minutes):
            await asyncio.sleep(max(0.0, started + (minute + 1) * 60 - time.perf_counter()))
            records[minute].rss_mb = rss_mb(target.server.process.pid)
            print(records[minute].row(), flush=True)

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        send = sender(http, target)
        await asyncio.gather(memory(), *(client(i * interval / clients, send) for i in range(clients)))
    return records


def verdicts(records: list[Minute]) -> list[str]:
    errors = sum(m.errors for m in records)
    first, last = records[0], records[-1]
    drift = (last.rss_mb - first.rss_mb) / first.rss_mb
    p99 = [percentile(sorted(a.seconds for a in m.answers if a.status == 200), 0.99) * 1000 for m in records]
    p50 = [percentile(sorted(a.seconds for a in m.answers if a.status == 200), 0.5) * 1000 for m in records]
    return [
        f"- errors: {errors} of {sum(len(m.answers) for m in records)} requests",
        f"- resident memory: {first.rss_mb:.1f} MiB after minute 1, {last.rss_mb:.1f} MiB after minute {len(records)}: "
        f"drift {drift:+.2%} (claim: under 5%)",
        f"- p50 per minute: {min(p50):.0f}-{max(p50):.0f} ms; p99 per minute: {min(p99):.0f}-{max(p99):.0f} ms",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--load", type=float, default=0.7, help="fraction of the measured capacity")
    parser.add_argument("--model", default="sr-x2", help="bundled model (engines/<model>)")
    parser.add_argument("--tiny", action="store_true", help="a tiny test model instead of the bundled one")
    parser.add_argument("--size", default="128x96", help="input image WxH")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop clients (capacity and soak)")
    parser.add_argument("--capacity-s", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "soak.md")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as scratch:
        target = start_target(args.model, args.tiny, (width, height), Path(scratch), {})
        try:
            sustainable = asyncio.run(capacity(target, args.clients, args.capacity_s))
            rate = sustainable * args.load
            print(f"capacity {sustainable:.2f} req/s; soaking at {rate:.2f} req/s for {args.minutes} min", flush=True)
            print(HEADER, flush=True)
            records = asyncio.run(soak(target, rate, args.clients, args.minutes))
        finally:
            target.server.stop()
        traces = target.server.log().count("Traceback")
    lines = [
        "# Soak",
        "",
        f"- command: `python bench/soak.py {' '.join(sys.argv[1:])}`",
        f"- machine: {machine_description()}",
        f"- date: {dt.datetime.now().isoformat(timespec='minutes')}",
        f"- model: {target.description}; image {args.size} PNG; "
        f"{args.clients} paced closed-loop clients on the same machine",
        f"- capacity: {sustainable:.2f} req/s measured first; target {args.load:.0%} of it: {rate:.2f} req/s",
        "",
        HEADER,
        *[m.row() for m in records],
        "",
        *verdicts(records),
        f"- tracebacks in the server log: {traces}",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-5:]))
    return 0 if all(m.errors == 0 for m in records) else 1


HEADER = "| minute | requests | req/s | errors | p50 ms | p99 ms | server RSS MiB |\n|---|---|---|---|---|---|---|"

if __name__ == "__main__":
    sys.exit(main())

"""Overload: the sustainable load measured first, then ten times that offered for a minute.

    python bench/overload.py --model sr-x2 --size 256x192 --capacity-s 30 --overload-s 60
    python bench/overload.py --tiny ...        # a tiny test model instead of the bundled one
    python bench/overload.py --no-shed-by-deadline ...   # FILTERS_SHED_BY_DEADLINE=false: as before

Claims checked (docs/reliability.md): under 10x the sustainable load every request gets an
answer; the ones admitted (not 429) all finish with 200; the rest are refused at once with 429 and
Retry-After (no place left, or, shedding by deadline, more work queued than their deadline
allows); with a short deadline nothing admitted expires; the server's resident memory stays flat;
afterwards it is ready and serving. Writes bench/results/overload.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from load_support import Answer, Target, latency_ms, open_loop, sample_rss, sender, start_target  # isort: skip
from service.bench.loadgen import closed_loop  # noqa: E402
from service.bench.report import machine_description  # noqa: E402


@dataclass
class Phase:
    """One load level and what came of it."""

    name: str
    offered_per_s: float
    seconds: float
    answers: list[Answer]
    rss: list[tuple[float, float]]
    items_run: float = 0.0
    refused_by_deadline: float = 0.0

    @property
    def statuses(self) -> collections.Counter[int]:
        return collections.Counter(a.status for a in self.answers)

    def row(self) -> str:
        s = self.statuses
        other = sum(v for k, v in s.items() if k not in (200, 429, 504))
        p50, p99 = latency_ms(self.answers)
        rss = [m for _, m in self.rss]
        return (
            f"| {self.name} | {self.offered_per_s:.1f} ({len(self.answers) / self.seconds:.1f} sent) "
            f"| {len(self.answers)} | {s[200]} | {s[429]} ({self.refused_by_deadline:.0f}) | {s[504]} "
            f"| {other} | {s[200] / self.seconds:.2f} | {self.items_run:.0f} | {p50:.0f} | {p99:.0f} "
            f"| {rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f} |"
        )


async def measure_capacity(target: Target, concurrency: int, seconds: float) -> tuple[float, float]:
    """Requests/s the server sustains at `concurrency` closed-loop clients (after a warm-up), and
    the median latency there (seconds)."""
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client:
        send = sender(client, target)

        async def ok(_: int) -> bool:
            return (await send()).status == 200

        await closed_loop("warmup", ok, concurrency, min(10.0, seconds / 3))
        result = await closed_loop("capacity", ok, concurrency, seconds)
    if result.errors:
        raise SystemExit(f"{result.errors} errors while measuring capacity: the server is not healthy")
    return result.throughput_per_s, result.p50_ms / 1000


def server_counts(target: Target) -> tuple[float, float]:
    """The server's counts (Prometheus) of items (tiles) the runtime ran, and of requests refused
    because the queued work would outlast their deadline."""
    text = httpx.get(f"{target.server.url}/metrics", timeout=30).text
    model = re.escape(target.model)
    executed = re.search(rf'^filters_items_executed_total{{model="{model}"}} (\S+)$', text, re.M)
    shed = re.search(rf'^filters_dropped_total{{model="{model}",reason="deadline_unreachable"}} (\S+)$', text, re.M)
    return (float(executed.group(1)) if executed else 0.0), (float(shed.group(1)) if shed else 0.0)


async def run_phase(target: Target, name: str, rate: float, seconds: float, headers: dict[str, str]) -> Phase:
    rss: list[tuple[float, float]] = []
    executed_before, shed_before = server_counts(target)
    stop = asyncio.Event()
    sampler = asyncio.get_running_loop().create_task(sample_rss(target.server.process.pid, 1.0, rss, stop))
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        answers = await open_loop(sender(client, target, headers), rate, seconds)
    stop.set()
    await sampler
    executed, shed = server_counts(target)
    phase = Phase(name, rate, seconds, answers, rss, executed - executed_before, shed - shed_before)
    print(phase.row(), flush=True)
    return phase


def verdicts(phases: list[Phase], target: Target) -> list[str]:
    overload, shedding = phases[1], phases[2]
    statuses = overload.statuses
    admitted_failed = sum(v for k, v in statuses.items() if k not in (200, 429))
    rss = [m for _, m in overload.rss]
    after = httpx.get(f"{target.server.url}/readyz", timeout=10).status_code
    serving = httpx.post(f"{target.server.url}/v1/superres", content=target.body, timeout=600).status_code
    shed = shedding.statuses
    other = {k: v for k, v in shed.items() if k not in (200, 429, 504)}
    return [
        f"- every request answered: {sum(statuses.values())} of {len(overload.answers)} sent at 10x",
        f"- admitted requests that did not finish with 200 at 10x: {admitted_failed}",
        f"- refused at once with 429: {statuses[429]} ({statuses[429] / len(overload.answers):.0%}); of these, "
        f"{overload.refused_by_deadline:.0f} because the queued work would outlast their deadline",
        f"- with a short deadline: 504 {shed[504]} (tiles run in that phase: {shedding.items_run:.0f} for "
        f"{shed[200]} answers 200); "
        f"429: {shed[429]} ({shedding.refused_by_deadline:.0f} by deadline); other: {other} "
        "(status 0: no answer at the transport level, -1: 200 with an empty body)",
        f"- server RSS during 10x: first {rss[0]:.0f} MiB, max {max(rss):.0f} MiB, last {rss[-1]:.0f} MiB "
        f"(last/first {rss[-1] / rss[0]:.3f})",
        f"- afterwards: /readyz {after}, a request {serving}",
    ]


async def campaign(args: argparse.Namespace, target: Target) -> tuple[float, list[Phase]]:
    capacity, p50_s = await measure_capacity(target, args.concurrency, args.capacity_s)
    print(f"sustainable: {capacity:.2f} req/s at {args.concurrency} clients, p50 {p50_s * 1000:.0f} ms", flush=True)
    baseline = f"{args.baseline:g}x sustainable"
    phases = [await run_phase(target, baseline, capacity * args.baseline, args.overload_s / 2, {})]
    phases.append(await run_phase(target, f"{args.factor:g}x", capacity * args.factor, args.overload_s, {}))
    deadline_s = args.deadline_s or round(max(1.0, 3 * p50_s), 1)
    name = f"{args.factor:g}x, X-Request-Timeout {deadline_s:g} s"
    headers = {"x-request-timeout": f"{deadline_s:g}"}
    phases.append(await run_phase(target, name, capacity * args.factor, args.overload_s / 2, headers))
    return capacity, phases


def report(
    args: argparse.Namespace, target: Target, capacity: float, phases: list[Phase], checks: list[str], load: str
) -> str:
    shedding = "off (`FILTERS_SHED_BY_DEADLINE=false`)" if args.no_shed_by_deadline else "on (default)"
    lines = [
        "# Overload: ten times the sustainable load",
        "",
        f"- command: `python bench/overload.py {shlex.join(sys.argv[1:])}`",
        f"- machine: {machine_description()}; load average before the run (1, 5, 15 min): {load}",
        *([f"- note: {args.note}"] if args.note else []),
        f"- date: {dt.date.today().isoformat()}",
        f"- shedding by deadline: {shedding}",
        f"- model: {target.description}; image {args.size} PNG; client on the same machine (open loop; "
        "its latencies include its own queueing when it cannot keep up with the offered rate)",
        f"- sustainable load: {capacity:.2f} req/s (closed loop, {args.concurrency} clients, "
        f"{args.capacity_s:g} s, no errors)",
        "",
        "| phase | offered req/s | sent | 200 | 429 (by deadline) | 504 | other | goodput req/s | tiles run "
        "| p50 ms (200) "
        "| p99 ms (200) | server RSS MiB first / max / last |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[p.row() for p in phases],
        "",
        *checks,
        "",
        "Server RSS during the 10x phase, one sample per second (MiB):",
        "",
        " ".join(f"{m:.0f}" for _, m in phases[1].rss),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sr-x2", help="bundled model (engines/<model>)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny test model instead")
    parser.add_argument("--size", default="256x192", help="input image WxH")
    parser.add_argument("--concurrency", type=int, default=4, help="closed-loop clients for the capacity")
    parser.add_argument("--capacity-s", type=float, default=30.0)
    parser.add_argument("--overload-s", type=float, default=60.0)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--baseline", type=float, default=0.7, help="load of the first phase, times the capacity")
    parser.add_argument(
        "--deadline-s", type=float, default=0.0, help="X-Request-Timeout of the shedding phase (default: 3x the p50)"
    )
    parser.add_argument("--max-queued", type=int, help="override the model's max_queued_requests (a copy)")
    parser.add_argument(
        "--no-shed-by-deadline", action="store_true", help="FILTERS_SHED_BY_DEADLINE=false: admission as before"
    )
    parser.add_argument("--note", default="", help="a line for the report (e.g. what else the machine ran)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "overload.md")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    env = {"FILTERS_SHED_BY_DEADLINE": "false"} if args.no_shed_by_deadline else {}
    with tempfile.TemporaryDirectory() as scratch:
        target = start_target(args.model, args.tiny, (width, height), Path(scratch), env, args.max_queued)
        try:
            capacity, phases = asyncio.run(campaign(args, target))
            checks = verdicts(phases, target)
        finally:
            target.server.stop()
    text = report(args, target, capacity, phases, checks, load)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

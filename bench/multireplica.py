"""Multi-replica failover under load: three real servers on loopback ports behind nginx (HTTP and
gRPC), steady closed-loop load, SIGTERM one replica (a rolling update) and later `kill -9`
another (a crash); counts what clients saw and what nginx saw.

    python bench/multireplica.py --steady 10 --concurrency 4 --out bench/results

Writes `<out>/multireplica.md` (and `.json`). The same scenario, shorter, is the test
tests/deploy/test_multireplica.py, which asserts the properties these figures show.
Needs nginx (apt-get install nginx-light); the replicas serve tiny models built on the fly.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.bench.report import machine_description  # noqa: E402
from tests.deploy.cluster import LocalCluster, grpc_unavailable_reason, nginx_binary  # noqa: E402
from tests.deploy.load import ClosedLoopLoad, GrpcSuperres, HttpSuperres, Target  # noqa: E402
from tests.deploy.scenario import SIGKILL, SIGTERM, STEADY, ScenarioResult, run_failover  # noqa: E402
from tests.support.data import png_bytes  # noqa: E402
from tests.support.tiny_models import write_sr_entry  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/multireplica.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3, help="server processes behind nginx")
    parser.add_argument("--steady", type=float, default=10.0, help="seconds of load before and after each signal")
    parser.add_argument("--concurrency", type=int, default=4, help="closed-loop clients per protocol")
    parser.add_argument("--side", type=int, default=160, help="side of the square test image, pixels")
    parser.add_argument("--out", type=Path, help="folder for multireplica.md and multireplica.json")
    return parser


def _targets(cluster: LocalCluster, side: int, with_grpc: bool) -> list[Target]:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    body, expected = png_bytes(pixels), (2 * side, 2 * side)
    targets: list[Target] = [HttpSuperres(cluster.url, body, expected)]
    if with_grpc:
        targets.append(GrpcSuperres(cluster.grpc_target, body, expected))
    return targets


def _figures_table(result: ScenarioResult, protocols: list[str]) -> list[str]:
    lines = [
        "| protocol | phase | sent | answered | failed | attempts retried by the client | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for protocol in protocols:
        for f in result.phase_figures(protocol):
            reasons = "; ".join(f.retry_reasons) if f.retry_reasons else ""
            retried = f"{f.retried_attempts}" + (f" ({reasons})" if reasons else "")
            failures = "; ".join(f.failures) or "none"
            lines.append(f"| {protocol} | {f.phase} | {f.sent} | {f.answered} | {f.failed} | {retried} | {failures} |")
    return lines


def _victim_table(result: ScenarioResult, protocols: list[str]) -> list[str]:
    lines = [
        "| signal | protocol | in flight on the replica | finished there | moved by nginx | failed "
        "| sent to it later, answered elsewhere |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in (SIGTERM, SIGKILL):
        for protocol in protocols:
            v = result.victim_figures(phase, protocol)
            lines.append(
                f"| {phase} | {protocol} | {v.in_flight} | {v.finished_on_victim} | {v.moved} | {v.failed} "
                f"| {v.rerouted_later} |"
            )
    return lines


def _timeline(result: ScenarioResult) -> list[str]:
    start = result.events[STEADY].at
    return [f"- +{event.at - start:.2f} s: {name}" for name, event in result.events.items()]


def report(result: ScenarioResult, args: argparse.Namespace, grpc_note: str, command: str) -> str:
    """The Markdown report of one run."""
    protocols = ["http"] + ([] if grpc_note else ["grpc"])
    nginx = subprocess.run([nginx_binary() or "nginx", "-v"], capture_output=True, text=True).stderr.strip()
    lines = [
        "# Multi-replica failover behind nginx",
        "",
        f"- command: `{command}`",
        f"- machine: {machine_description()}; {nginx}; load average before the run "
        f"{args.load_before:.1f} (the machine is shared)",
        f"- date: {dt.date.today().isoformat()}",
        f"- setup: {args.replicas} replicas (`python -m service`, 1 CPU thread each, tiny x2 ONNX model), "
        f"nginx from deploy/nginx/nginx.conf.template, {args.concurrency} closed-loop clients per protocol, "
        f"{args.side}x{args.side} PNG per request, {args.steady:.0f} s of load per phase",
        f"- gRPC: {grpc_note or 'under load (filters.v1.Filters/Superres through nginx grpc_pass)'}",
        "",
        "Calls by the phase they started in (client side):",
        "",
        *_figures_table(result, protocols),
        "",
        "The signalled replica's requests (nginx's access log):",
        "",
        *_victim_table(result, protocols),
        "",
        f"SIGTERM: the replica drained and exited with status {result.drain_exit_code} "
        f"{result.drain_seconds:.1f} s after the signal.",
        f"Every replica down: HTTP {result.no_replica_status} `{json.dumps(result.no_replica_body)}`"
        + (f"; gRPC `{result.no_replica_grpc}`" if result.no_replica_grpc else "")
        + ".",
        "",
        "Timeline:",
        "",
        *_timeline(result),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.load_before = os.getloadavg()[0]
    if nginx_binary() is None:
        raise SystemExit("nginx is not installed (apt-get install nginx-light)")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_sr_entry(root / "repo", "lb-x2", 2, default=True)
        env = {"FILTERS_CPU_THREADS": "1", "FILTERS_CODEC_THREADS": "1", "FILTERS_DRAIN_TIMEOUT_S": "20"}
        cluster = LocalCluster(root / "repo", root / "cluster", replicas=args.replicas, env=env)
        try:
            cluster.start()
            grpc_note = grpc_unavailable_reason(f"127.0.0.1:{cluster.nodes[0].grpc_port}") or ""
            load = ClosedLoopLoad(_targets(cluster, args.side, not grpc_note), args.concurrency)
            result = run_failover(cluster, load, args.steady)
        finally:
            cluster.stop()
    command = "python bench/multireplica.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = report(result, args, f"not run: {grpc_note}" if grpc_note else "", command)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "multireplica.md").write_text(text)
        figures = {p: [dataclasses.asdict(f) for f in result.phase_figures(p)] for p in ("http", "grpc")}
        (args.out / "multireplica.json").write_text(json.dumps(figures, indent=1) + "\n")
        print(f"wrote {args.out / 'multireplica.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Three real replicas behind nginx (HTTP and gRPC) under steady load: a SIGTERMed replica loses
no request, a `kill -9`ed one fails at most the requests that were on it, with a clear error,
and the load carries on. `bench/multireplica.py` runs the same scenario longer and records the
figures in bench/results/multireplica.md."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.deploy.cluster import LocalCluster, Replica, grpc_unavailable_reason, nginx_binary
from tests.deploy.load import ClosedLoopLoad, GrpcSuperres, HttpSuperres, Target
from tests.deploy.scenario import SIGKILL, SIGNAL_DONE, SIGTERM, STEADY, ScenarioResult, run_failover
from tests.support.data import png_bytes
from tests.support.live_server import free_port
from tests.support.tiny_models import write_sr_entry

pytestmark = pytest.mark.slow

# Small and CPU-friendly: 3 replicas, nginx and the load share 2 cores.
REPLICA_ENV = {"FILTERS_CPU_THREADS": "1", "FILTERS_CODEC_THREADS": "1", "FILTERS_DRAIN_TIMEOUT_S": "20"}
IMAGE_SIDE = 160
NGINX_GRPC_FAILURE = "no replica could answer this call"


@dataclass
class Failover:
    result: ScenarioResult
    grpc_skip_reason: str | None


def build_targets(cluster: LocalCluster, grpc_skip_reason: str | None) -> list[Target]:
    """HTTP superres through nginx, and gRPC superres when the replicas serve gRPC."""
    pixels = np.random.default_rng(0).integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
    body, expected = png_bytes(pixels), (2 * IMAGE_SIDE, 2 * IMAGE_SIDE)
    targets: list[Target] = [HttpSuperres(cluster.url, body, expected)]
    if grpc_skip_reason is None:
        targets.append(GrpcSuperres(cluster.grpc_target, body, expected))
    return targets


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Failover:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run does it): no load balancer to test")
    root = tmp_path_factory.mktemp("multireplica")
    write_sr_entry(root / "repo", "lb-x2", 2, default=True)
    cluster = LocalCluster(root / "repo", root / "cluster", env=REPLICA_ENV)
    try:
        cluster.start()
        reason = grpc_unavailable_reason(f"127.0.0.1:{cluster.nodes[0].grpc_port}")
        load = ClosedLoopLoad(build_targets(cluster, reason), concurrency=2)
        return Failover(run_failover(cluster, load, steady_s=2.5), reason)
    finally:
        cluster.stop()


def grpc_result(failover: Failover) -> ScenarioResult:
    if failover.grpc_skip_reason is not None:
        pytest.skip(f"gRPC half not run: {failover.grpc_skip_reason}")
    return failover.result


def test_sigterm_loses_no_http_request(failover: Failover) -> None:
    result = failover.result
    steady, sigterm, _ = result.phase_figures("http")
    assert steady.sent > 0 and sigterm.sent > 0
    assert (steady.failed, sigterm.failed) == (0, 0), f"failed requests: {steady.failures} {sigterm.failures}"
    assert result.drain_exit_code == 0, "the replica should drain and exit 0"
    victim = result.victim_figures(SIGTERM, "http")
    assert victim.failed == 0 and victim.finished_on_victim + victim.moved == victim.in_flight


def test_kill_fails_only_http_requests_in_flight_on_the_dead_replica(failover: Failover) -> None:
    result = failover.result
    *_, killed = result.phase_figures("http")
    failed = [s for s in result.samples if s.protocol == "http" and not s.ok and result.phase_of(s) != STEADY]
    in_flight = result.in_flight_during(SIGKILL, "http")
    assert all(s in in_flight for s in failed), f"failures outside the kill: {[s.outcome for s in failed]}"
    assert len(failed) <= result.victim_figures(SIGKILL, "http").in_flight
    assert all(s.outcome == "502 upstream_failed" for s in failed), [s.outcome for s in failed]
    gone = result.events[SIGNAL_DONE[SIGKILL]].at
    carried_on = [s for s in result.samples if s.protocol == "http" and s.start > gone and s.ok]
    assert killed.sent > 0 and carried_on, "the load should carry on after the kill"


def test_with_every_replica_down_nginx_answers_a_clear_json_error(failover: Failover) -> None:
    result = failover.result
    assert result.no_replica_status == 502
    error = result.no_replica_body.get("error")
    assert isinstance(error, dict) and error["code"] == "upstream_failed" and "retry" in error["message"]


def test_grpc_sigterm_and_kill_lose_no_call(failover: Failover) -> None:
    result = grpc_result(failover)
    figures = result.phase_figures("grpc")
    assert all(f.sent > 0 for f in figures)
    assert [f.failed for f in figures] == [0, 0, 0], [f.failures for f in figures]
    drained = result.victim_figures(SIGTERM, "grpc")
    assert drained.failed == 0, "a call in flight on the draining replica was cut"


def test_grpc_kill_cuts_only_calls_in_flight_with_a_clear_status(failover: Failover) -> None:
    result = grpc_result(failover)
    cut = [r for s in result.in_flight_during(SIGKILL, "grpc") for r in s.retried if NGINX_GRPC_FAILURE in r]
    assert len(cut) <= result.victim_figures(SIGKILL, "grpc").in_flight
    assert all(r.startswith("UNAVAILABLE: ") for s in result.samples for r in s.retried), "retried only UNAVAILABLE"
    assert result.no_replica_grpc.startswith("UNAVAILABLE: ") and NGINX_GRPC_FAILURE in result.no_replica_grpc
    gone = result.events[SIGNAL_DONE[SIGKILL]].at
    assert any(s.protocol == "grpc" and s.start > gone and s.ok for s in result.samples), "gRPC load stopped"


def test_nginx_template_renders_a_valid_config(tmp_path: Path) -> None:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed")
    cluster = LocalCluster(tmp_path / "repo", tmp_path / "cluster", http_port=free_port(), grpc_port=free_port())
    cluster.nodes = [Replica(i, free_port(), free_port(), tmp_path / f"r{i}.log") for i in range(3)]
    (tmp_path / "cluster" / "nginx").mkdir(parents=True)
    conf = tmp_path / "cluster" / "nginx" / "nginx.conf"
    conf.write_text(cluster.render_nginx_conf())
    assert not re.findall(r"@@[A-Z_]+@@", conf.read_text()), "a placeholder was left unfilled"
    checked = subprocess.run([binary, "-t", "-p", str(conf.parent), "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_access_log_saw_every_http_request(failover: Failover) -> None:
    """Control for the nginx-side counts: every client request is one line of nginx's log."""
    result = failover.result
    http_lines = [e for e in result.access if e.request.startswith("POST /v1/superres")]
    assert len(http_lines) == sum(1 for s in result.samples if s.protocol == "http") + 1  # + the all-down probe

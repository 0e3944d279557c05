"""The failover scenario of the multi-replica test and what its figures mean.

Under steady load through nginx: SIGTERM one replica (what Kubernetes does to a pod in a rolling
update) and start its replacement on the same ports; later `kill -9` another replica (a crash).
The client-side samples say what callers saw; nginx's access log says which replica each request
was on, so the requests in flight at each signal can be counted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from tests.deploy.cluster import AccessEntry, LocalCluster
from tests.deploy.load import ClosedLoopLoad, GrpcSuperres, Sample, describe_error

STEADY = "steady, 3 replicas"
SIGTERM = "SIGTERM replica 0, replacement started"
SIGKILL = "kill -9 replica 1"
PHASES = (STEADY, SIGTERM, SIGKILL)
# When each signal had taken effect: SIGTERM is delivered at once, SIGKILL once the process is reaped.
SIGNAL_DONE = {SIGTERM: SIGTERM, SIGKILL: "replica 1 gone"}
VICTIMS = {SIGTERM: 0, SIGKILL: 1}


@dataclass(frozen=True)
class Event:
    """Something the scenario did, and when (wall clock)."""

    name: str
    at: float


@dataclass(frozen=True)
class VictimFigures:
    """What nginx saw of the requests to the replica signalled in a phase."""

    in_flight: int  # on the replica when the signal took effect
    finished_on_victim: int  # of those, answered by that replica itself (drained)
    moved: int  # of those, sent again by nginx to another replica and answered there
    failed: int  # of those, answered with an error by nginx
    rerouted_later: int  # sent to it after the signal (refused or connection refused), answered elsewhere


@dataclass(frozen=True)
class PhaseFigures:
    """Client-side counts of the calls that started in one phase."""

    protocol: str
    phase: str
    sent: int
    answered: int
    failed: int
    failures: tuple[str, ...]
    retried_attempts: int  # failed attempts the client retried (gRPC UNAVAILABLE)
    retry_reasons: tuple[str, ...]


@dataclass
class ScenarioResult:
    """Everything the scenario observed."""

    events: dict[str, Event]
    samples: list[Sample]
    addresses: dict[tuple[str, str], str]  # (phase, protocol) -> the victim's address
    drain_exit_code: int
    drain_seconds: float
    access: list[AccessEntry] = field(default_factory=list)
    no_replica_status: int = 0
    no_replica_body: dict[str, object] = field(default_factory=dict)
    no_replica_grpc: str = ""  # what a gRPC call gets then (empty when gRPC was not under load)

    def phase_of(self, sample: Sample) -> str:
        if sample.start >= self.events[SIGKILL].at:
            return SIGKILL
        return SIGTERM if sample.start >= self.events[SIGTERM].at else STEADY

    def phase_figures(self, protocol: str) -> list[PhaseFigures]:
        figures = []
        for phase in PHASES:
            mine = [s for s in self.samples if s.protocol == protocol and self.phase_of(s) == phase]
            failed = [s for s in mine if not s.ok]
            retried = [reason for s in mine for reason in s.retried]
            figures.append(
                PhaseFigures(
                    protocol,
                    phase,
                    len(mine),
                    len(mine) - len(failed),
                    len(failed),
                    tuple(sorted({s.outcome for s in failed})),
                    len(retried),
                    tuple(sorted(set(retried))),
                )
            )
        return figures

    def signal_window(self, phase: str) -> tuple[float, float]:
        """From just before the signal of `phase` was sent until it had taken effect."""
        return self.events[phase].at, self.events[SIGNAL_DONE[phase]].at

    def victim_figures(self, phase: str, protocol: str) -> VictimFigures:
        """Requests (nginx's log) of the replica signalled at the start of `phase`."""
        (sent, done), victim = self.signal_window(phase), self.addresses[(phase, protocol)]
        on_it = [e for e in self.access if e.upstreams[:1] == [victim] and e.start <= done and e.end >= sent]
        later = [e for e in self.access if victim in e.upstreams and e.start > done]
        return VictimFigures(
            in_flight=len(on_it),
            finished_on_victim=sum(1 for e in on_it if e.status == 200 and e.upstreams == [victim]),
            moved=sum(1 for e in on_it if e.status == 200 and e.upstreams[-1] != victim),
            failed=sum(1 for e in on_it if e.status != 200),
            rerouted_later=sum(1 for e in later if e.status == 200 and e.upstreams[-1] != victim),
        )

    def in_flight_during(self, phase: str, protocol: str) -> list[Sample]:
        """Client calls that were in flight while the signal of `phase` took effect."""
        sent, done = self.signal_window(phase)
        return [s for s in self.samples if s.protocol == protocol and s.start <= done and s.end >= sent]


def _mark(events: dict[str, Event], name: str) -> None:
    events[name] = Event(name, time.time())


def run_failover(cluster: LocalCluster, load: ClosedLoopLoad, steady_s: float) -> ScenarioResult:
    """Steady load; SIGTERM replica 0 and replace it; kill -9 replica 1; then the all-down answer."""
    events: dict[str, Event] = {}
    load.start()
    _mark(events, STEADY)
    time.sleep(steady_s)
    _mark(events, SIGTERM)
    began = time.monotonic()
    exit_code = cluster.terminate(VICTIMS[SIGTERM])
    drain_seconds = time.monotonic() - began
    cluster.restart(VICTIMS[SIGTERM])
    _mark(events, "replacement ready")
    time.sleep(steady_s)
    _mark(events, SIGKILL)  # just before the signal: a request it cuts started before this mark
    cluster.kill(VICTIMS[SIGKILL])
    _mark(events, SIGNAL_DONE[SIGKILL])
    time.sleep(steady_s)
    samples = load.stop()
    _mark(events, "load stopped")
    addresses = {}
    for phase, index in VICTIMS.items():
        node = cluster.nodes[index]
        addresses[(phase, "http")] = node.address
        addresses[(phase, "grpc")] = f"127.0.0.1:{node.grpc_port}"
    result = ScenarioResult(events, samples, addresses, exit_code, drain_seconds)
    _probe_all_down(cluster, result)
    result.access = cluster.access_log()
    return result


def _probe_all_down(cluster: LocalCluster, result: ScenarioResult) -> None:
    """Kill every replica left and record what a client gets from nginx then."""
    for node in cluster.nodes:
        if node.alive:
            cluster.kill(node.index)
    response = httpx.post(f"{cluster.url}/v1/superres", content=b"\x89PNG", timeout=30)
    result.no_replica_status = response.status_code
    try:
        result.no_replica_body = response.json()
    except ValueError:
        result.no_replica_body = {"unparsed": describe_error(response)}
    if any(s.protocol == "grpc" for s in result.samples):
        result.no_replica_grpc = asyncio.run(_grpc_outcome(cluster.grpc_target))


async def _grpc_outcome(target: str) -> str:
    caller = GrpcSuperres(target, b"\x89PNG", (0, 0), retry_budget_s=0.0)
    await caller.open()
    try:
        return (await caller.call()).detail
    finally:
        await caller.close()

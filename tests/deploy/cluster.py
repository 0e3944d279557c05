"""A local stand-in for a Kubernetes Deployment behind a load balancer: several real server
processes (`python -m service`) on loopback ports behind nginx, which runs as a plain process
with its own prefix, rendered from `deploy/nginx/nginx.conf.template`.

Replicas keep their ports across restarts, as a pod's replacement keeps its Service, so nginx's
upstream list never changes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.live_server import REPO_ROOT, free_port

NGINX_TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "nginx.conf.template"
_LOG_LINE = re.compile(
    r'^(?P<msec>[\d.]+) (?P<rt>[\d.]+) (?P<status>\d+) "(?P<request>[^"]*)" "(?P<addr>[^"]*)" "(?P<ups>[^"]*)"$'
)


def nginx_binary() -> str | None:
    """Path of the nginx executable, or None when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `check()` every 50 ms until it is true; RuntimeError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Replica:
    """One server process; its ports survive restarts."""

    index: int
    http_port: int
    grpc_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class AccessEntry:
    """One line of nginx's access log: a client request and the replicas it was sent to."""

    end: float
    duration: float
    status: int
    request: str
    upstreams: list[str]
    upstream_statuses: list[str]

    @property
    def start(self) -> float:
        return self.end - self.duration


def parse_access_log(text: str) -> list[AccessEntry]:
    """Entries of the `upstreams` log format of the nginx template."""
    entries = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line.strip())
        if match:
            entries.append(
                AccessEntry(
                    end=float(match["msec"]),
                    duration=float(match["rt"]),
                    status=int(match["status"]),
                    request=match["request"],
                    upstreams=[a.strip() for a in re.split(r"[,:]\s", match["addr"]) if a.strip() not in ("", "-")],
                    upstream_statuses=[s.strip() for s in re.split(r"[,:]\s", match["ups"]) if s.strip()],
                )
            )
    return entries


@dataclass
class LocalCluster:
    """`replicas` servers on `repository` behind nginx (HTTP and gRPC listeners)."""

    repository: Path
    workdir: Path
    replicas: int = 3
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[Replica] = field(default_factory=list)
    http_port: int = 0
    grpc_port: int = 0
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients send HTTP requests (nginx)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        """Where clients send gRPC calls (nginx)."""
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, ready_timeout_s: float = 120.0) -> None:
        """Start every replica and nginx; return when nginx answers /readyz through a replica."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = [
            Replica(i, free_port(), free_port(), self.workdir / f"replica{i}.log") for i in range(self.replicas)
        ]
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            self._wait_ready(node, ready_timeout_s)
        self._start_nginx()

    def _spawn(self, node: Replica) -> None:
        environment = dict(os.environ)
        environment.update(
            {
                "FILTERS_HOST": "127.0.0.1",
                "FILTERS_PORT": str(node.http_port),
                "FILTERS_GRPC_PORT": str(node.grpc_port),
                "FILTERS_MODEL_REPOSITORY": str(self.repository),
                "FILTERS_LOG_LEVEL": "warning",
                "PYTHONUNBUFFERED": "1",
            }
        )
        environment.update(self.env)
        log = node.log_path.open("ab")
        node.process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def _wait_ready(self, node: Replica, timeout_s: float) -> None:
        last = ["no answer"]

        def ready() -> bool:
            if not node.alive:
                raise RuntimeError(f"replica {node.index} exited:\n{node.log_path.read_text(errors='replace')}")
            try:
                response = httpx.get(f"http://{node.address}/readyz", timeout=2.0)
            except httpx.TransportError as exc:
                last[0] = repr(exc)
                return False
            last[0] = f"{response.status_code} {response.text[:200]}"
            return response.status_code == 200

        try:
            wait_until(ready, timeout_s, f"replica {node.index} to be ready")
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc}; last /readyz: {last[0]}; log:\n{node.log_path.read_text(errors='replace')}"
            ) from None

    def render_nginx_conf(self) -> str:
        """The nginx template with this cluster's prefix, listeners and replicas filled in."""
        http = "\n".join(f"        server {n.address} max_fails=1 fail_timeout=2s;" for n in self.nodes)
        grpc = "\n".join(f"        server 127.0.0.1:{n.grpc_port} max_fails=1 fail_timeout=2s;" for n in self.nodes)
        text = NGINX_TEMPLATE.read_text()
        for key, value in {
            "@@PREFIX@@": str(self.workdir / "nginx"),
            "@@HTTP_LISTEN@@": f"127.0.0.1:{self.http_port}",
            "@@GRPC_LISTEN@@": f"127.0.0.1:{self.grpc_port}",
            "@@HTTP_SERVERS@@": http,
            "@@GRPC_SERVERS@@": grpc,
        }.items():
            text = text.replace(key, value)
        # As root, nginx's workers would drop to `nobody` and lose access to the private prefix.
        return ("user root;\n" if os.geteuid() == 0 else "") + text

    def _start_nginx(self) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        self.http_port, self.grpc_port = free_port(), free_port()
        prefix = self.workdir / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(self.render_nginx_conf())
        log = (prefix / "stderr.log").open("ab")
        self.nginx = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        process = self.nginx

        def proxying() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{(prefix / 'stderr.log').read_text(errors='replace')}")
            return _answers(f"{self.url}/readyz")

        wait_until(proxying, 30, "nginx to proxy /readyz")

    def terminate(self, index: int, timeout_s: float = 60.0) -> int:
        """SIGTERM replica `index` (what Kubernetes does after preStop) and wait for it to exit."""
        node = self.nodes[index]
        assert node.process is not None
        node.process.send_signal(signal.SIGTERM)
        return node.process.wait(timeout_s)

    def kill(self, index: int) -> None:
        """SIGKILL replica `index`: no drain, its in-flight requests are cut."""
        node = self.nodes[index]
        assert node.process is not None
        node.process.kill()
        node.process.wait()

    def restart(self, index: int, ready_timeout_s: float = 120.0) -> None:
        """Start a new process for replica `index` on the same ports and wait until it is ready."""
        node = self.nodes[index]
        assert not node.alive, "stop the replica first"
        self._spawn(node)
        self._wait_ready(node, ready_timeout_s)

    def access_log(self) -> list[AccessEntry]:
        """nginx's access log so far."""
        path = self.workdir / "nginx" / "access.log"
        return parse_access_log(path.read_text()) if path.exists() else []

    def stop(self) -> None:
        """Stop nginx and every replica still running (SIGKILL after 15 s)."""
        processes = [self.nginx] + [n.process for n in self.nodes]
        for process in processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def grpc_unavailable_reason(address: str) -> str | None:
    """None when `address` serves gRPC health (grpc.health.v1) and reports SERVING, else why not."""
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError as exc:
        return f"grpcio / grpcio-health-checking are not installed ({exc})"
    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    except grpc.RpcError as exc:
        return f"no gRPC health service on {address}: {exc.code().name} {exc.details()}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"gRPC health on {address} reports {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None

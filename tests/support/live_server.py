"""Start the real server (`python -m service`) as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running server process and where to reach it."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    repository: Path
    grpc_port: int = 0

    @property
    def grpc_target(self) -> str:
        """`host:port` of the server's gRPC API (and Open Inference Protocol over gRPC)."""
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    repository: Path,
    log_path: Path,
    env: dict[str, str] | None = None,
    ready_timeout: float = 120.0,
    tls: ssl.SSLContext | None = None,
) -> LiveServer:
    """Start a server on `repository` and wait until /readyz answers 200.

    With `tls` (a client context trusting the server's certificate; the server's own TLS settings
    go in `env`) the server is reached over https.
    """
    port = free_port()
    grpc_port = free_port()
    while grpc_port == port:
        grpc_port = free_port()
    environment = dict(os.environ)
    environment.update(
        {
            "FILTERS_HOST": "127.0.0.1",
            "FILTERS_PORT": str(port),
            "FILTERS_GRPC_PORT": str(grpc_port),
            "FILTERS_MODEL_REPOSITORY": str(repository),
            "FILTERS_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            "PYTHONFAULTHANDLER": "1",  # a crash leaves every thread's stack in the server log
        }
    )
    environment.update(env or {})
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
    )
    scheme = "https" if tls else "http"
    server = LiveServer(
        f"{scheme}://127.0.0.1:{port}", process, log_path, repository, int(environment["FILTERS_GRPC_PORT"])
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1.0, verify=tls or True).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server not ready after {ready_timeout} s:\n{server.log()}")

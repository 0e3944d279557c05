"""Several server processes on one port (FILTERS_WORKERS > 1), for a host whose one event loop
is the limit: on the H200 one process answers ~220 requests/s of 960x540 PNG -> 4K JPEG with its
event loop thread ~90% busy moving bytes, while cores and GPU have room (docs/performance.md).

    supervisor (python -m service)          children (python -m service --worker-process)
    starts FILTERS_WORKERS children  --->   each: the whole server (models, slots, HTTP, gRPC),
    forwards SIGTERM/SIGINT (each drains)    binding the HTTP and gRPC ports with SO_REUSEPORT:
    restarts a child that dies               the kernel spreads new connections over them

Each child loads its own copy of the models (on a GPU: its own CUDA context and slots; the GPU
is time-shared between them). Readiness and /metrics are per process: a scrape or a probe
reaches whichever child takes the connection. In Kubernetes the default (one process per pod,
more replicas) stays the simpler choice; use this where one pod owns a large GPU.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger(__name__)
WORKER_FLAG = "--worker-process"
RESTART_DELAY_S = 1.0
POLL_S = 0.2


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` that other processes may bind too (SO_REUSEPORT)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = found[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(address)
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


@dataclass
class Supervisor:
    """Starts `count` children running `command`, restarts those that die, forwards stop signals."""

    command: list[str]
    count: int
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stopping: bool = False

    def run(self) -> int:
        """Until every child has exited after a stop signal: 0 if all exited cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._forward)
        self.children = [self._start(i) for i in range(self.count)]
        log.warning("serving with %d worker processes: %s", self.count, [c.pid for c in self.children])
        while not (self.stopping and all(c.poll() is not None for c in self.children)):
            time.sleep(POLL_S)
            if not self.stopping:
                self._restart_dead()
        codes = [c.returncode for c in self.children]
        return 0 if all(code == 0 for code in codes) else 1

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ) | {"FILTERS_PROCESS_INDEX": str(index)}
        return subprocess.Popen(self.command, env=env)

    def _restart_dead(self) -> None:
        for index, child in enumerate(self.children):
            if child.poll() is None:
                continue
            log.error("worker process %d (pid %d) exited with %s; restarting it", index, child.pid, child.returncode)
            time.sleep(RESTART_DELAY_S)
            if not self.stopping:
                self.children[index] = self._start(index)

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(sig)


def supervise(argv: list[str], count: int) -> int:
    """Run `count` copies of `python -m service <argv>` as worker processes (see the module doc)."""
    return Supervisor([sys.executable, "-m", "service", WORKER_FLAG, *argv], count).run()

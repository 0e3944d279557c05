"""Graceful drain: what happens between SIGTERM and exit.

On the first SIGTERM (or Ctrl-C) readiness turns 503 at once and new work is refused with 503,
while requests already in flight run to completion. Once none is left (after at least
`drain_announce_s`, so load balancers see the 503) or `drain_timeout_s` has passed, uvicorn's own
shutdown runs: the listening socket closes and the lifespan stops the models. A second signal
exits at once. This is uvicorn's order, with a drain phase in front.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from service.core import ServerState

log = logging.getLogger(__name__)

UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})


class InFlightCounter:
    """ASGI middleware counting requests in progress (probes and metrics excluded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain phase before its shutdown."""

    def __init__(
        self, config: uvicorn.Config, state: ServerState, counter: InFlightCounter, timeout_s: float, announce_s: float
    ) -> None:
        super().__init__(config)
        self._state = state
        self._counter = counter
        self._timeout_s = timeout_s
        self._announce_s = announce_s
        self._drain_started: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_started is None and sig in (signal.SIGTERM, signal.SIGINT):
            self._drain_started = time.monotonic()
            self._state.draining = True
            log.warning("signal %d: draining %d requests (at most %.0f s)", sig, self._counter.count, self._timeout_s)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_started is not None and not self.should_exit:
            elapsed = time.monotonic() - self._drain_started
            if self._counter.count == 0 and elapsed >= self._announce_s:
                log.warning("drained after %.1f s; shutting down", elapsed)
                self.should_exit = True
            elif elapsed > self._timeout_s:
                log.warning("drain timeout: %d requests still in flight; shutting down", self._counter.count)
                self.should_exit = True
        return await super().on_tick(counter)

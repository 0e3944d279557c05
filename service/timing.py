"""Stage timings of one request: where its time went (rendered as `Server-Timing` over HTTP)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Named durations in milliseconds, in the order they were first recorded."""

    def __init__(self) -> None:
        self._entries: dict[str, float] = {}
        self._started = time.perf_counter()

    def add(self, name: str, seconds: float) -> None:
        self._entries[name] = self._entries.get(name, 0.0) + seconds * 1000.0

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def milliseconds(self) -> dict[str, float]:
        """Every stage plus `total` (time since the timer was made)."""
        return dict(self._entries, total=(time.perf_counter() - self._started) * 1000.0)

    def server_timing_header(self) -> str:
        return ", ".join(f"{name};dur={ms:.2f}" for name, ms in self.milliseconds().items())

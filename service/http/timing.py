"""The `Server-Timing` header: where a request's time went."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class ServerTiming:
    """Named durations in milliseconds, rendered as a `Server-Timing` header."""

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

    def header(self) -> str:
        entries = dict(self._entries, total=(time.perf_counter() - self._started) * 1000.0)
        return ", ".join(f"{name};dur={ms:.2f}" for name, ms in entries.items())

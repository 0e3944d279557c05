"""How long the cyclic garbage collector stops the server, by generation.

Every collection holds the GIL from start to end, so while it runs no Python thread moves: not
the event loop, not the thread that feeds the video encoder. `install()` times each collection
(a `gc.callbacks` hook) into the Prometheus histogram `filters_gc_pause_seconds{generation}`
and into running totals that a caller can difference over a span of work (`Totals.since`), as
the video pipeline does for its log line.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram

GC_PAUSE = Histogram(
    "filters_gc_pause_seconds",
    "Time one cyclic garbage collection held the process (the GIL), by generation.",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
_started = threading.local()
_counts = [0, 0, 0]
_seconds = [0.0, 0.0, 0.0]


@dataclass(frozen=True)
class Totals:
    """Collections and their seconds so far, per generation (0, 1, 2)."""

    counts: tuple[int, ...]
    seconds: tuple[float, ...]

    def since(self, earlier: Totals) -> Totals:
        return Totals(
            tuple(a - b for a, b in zip(self.counts, earlier.counts, strict=True)),
            tuple(a - b for a, b in zip(self.seconds, earlier.seconds, strict=True)),
        )

    def __str__(self) -> str:
        parts = [f"gen{g}: {n} in {s:.3f} s" for g, (n, s) in enumerate(zip(self.counts, self.seconds, strict=True))]
        return ", ".join(parts)


def totals() -> Totals:
    return Totals(tuple(_counts), tuple(_seconds))


def install() -> None:
    """Start timing collections (once per process; later calls do nothing)."""
    if _callback not in gc.callbacks:
        gc.callbacks.append(_callback)


def _callback(phase: str, info: dict[str, Any]) -> None:
    # runs on the collecting thread, which holds the GIL throughout: the totals need no lock
    if phase == "start":
        _started.at = time.perf_counter()
        return
    started = getattr(_started, "at", None)
    if started is None:
        return
    seconds = time.perf_counter() - started
    generation = int(info.get("generation", 2))
    _counts[generation] += 1
    _seconds[generation] += seconds
    GC_PAUSE.labels(str(generation)).observe(seconds)

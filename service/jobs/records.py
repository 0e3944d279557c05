"""What a job is: its state, its progress, its result file, and a way to wait for it to change."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from service.errors import ServiceError
from service.scheduling.records import RequestTicket

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL_STATES: frozenset[JobState] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(eq=False)
class Job:
    """One asynchronous video job. Times are wall-clock (`time.time()`) seconds."""

    id: str
    model: str
    media_type: str
    result_path: Path
    frames_total: int | None
    created_at: float = field(default_factory=time.time)
    state: JobState = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    frames_done: int = 0
    bytes_written: int = 0
    error: ServiceError | None = None
    ticket: RequestTicket | None = None
    task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def fraction_done(self) -> float | None:
        """Frames done over frames expected (the container's count or an estimate), at most 1."""
        if self.state == "succeeded":
            return 1.0
        if not self.frames_total:
            return None
        return min(1.0, self.frames_done / self.frames_total)

    @property
    def frames_per_s(self) -> float | None:
        if self.started_at is None or self.frames_done == 0:
            return None
        end = self.finished_at or time.time()
        return self.frames_done / max(end - self.started_at, 1e-6)

    @property
    def eta_s(self) -> float | None:
        """Seconds until done at the current rate (None before the first frame or when unknown)."""
        rate = self.frames_per_s
        if self.finished or rate is None or not self.frames_total:
            return None
        return max(0.0, (self.frames_total - self.frames_done) / rate)

    def notify(self) -> None:
        """Wake everyone waiting for this job to change (progress, bytes, state)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, timeout_s: float) -> None:
        """Return when the job changes, or after `timeout_s`."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_s)

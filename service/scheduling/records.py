"""What crosses the queues: typed records that carry their own future and deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# What a work item's future answers: one output per model output, batch axis removed. Numpy
# arrays, except for items run `on_device`, whose image outputs stay on the GPU (torch tensors).
ItemResult = tuple[Any, ...]


@dataclass(eq=False)
class RequestTicket:
    """Shared by every work item of one client request: its deadline and its cancellation.

    `deadline` is on the event loop's clock (`loop.time()`). Setting `cancelled` (client gone, or
    another item of the request failed) makes the batcher drop the request's remaining items
    before they run.
    """

    deadline: float
    cancelled: bool = False

    def expired(self, now: float) -> bool:
        return now >= self.deadline


@dataclass(eq=False)
class WorkItem:
    """One unit of batched work (a tile or a frame): one array per model input, no batch axis."""

    inputs: tuple[np.ndarray, ...]
    ticket: RequestTicket
    future: asyncio.Future[ItemResult]
    enqueued_at: float  # loop clock
    started_at: float | None = None  # perf_counter clock, set when its batch starts
    finished_at: float | None = None  # perf_counter clock
    on_device: bool = False  # keep image outputs on the slot's device (`DeviceOutputSlot`) if it can

    @property
    def shape_key(self) -> tuple[object, ...]:
        """Items batch together only with items of the same input shapes and output placement."""
        return (*(a.shape for a in self.inputs), self.on_device)


@dataclass
class BatchTiming:
    """Times of one request's items (perf_counter clock): where the request waited and ran."""

    submitted_at: float
    started_at: float = field(default=0.0)
    finished_at: float = field(default=0.0)

    @property
    def queue_s(self) -> float:
        return max(0.0, self.started_at - self.submitted_at)

    @property
    def compute_s(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

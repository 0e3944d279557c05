"""Per-model scheduler: admission control in front of one dynamic batcher per input shape."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence

import numpy as np

from service import metrics
from service.errors import DeadlineExceeded, Overloaded
from service.scheduling.batcher import BatchPolicy, DynamicBatcher
from service.scheduling.records import BatchTiming, ItemResult, RequestTicket, WorkItem
from service.workers.pool import SlotPool

ShapeKey = tuple[object, ...]


class ModelScheduler:
    """Admits requests for one model and routes their items to the batcher of their shape."""

    def __init__(self, model_name: str, policy: BatchPolicy, pool: SlotPool, max_queued_requests: int) -> None:
        self.model_name = model_name
        self.pool = pool
        self._policy = policy
        self._max_requests = max_queued_requests
        self._in_flight = 0
        self._batchers: dict[ShapeKey, DynamicBatcher] = {}
        self._depth = metrics.QUEUE_DEPTH.labels(model_name)
        self._in_flight_gauge = metrics.IN_FLIGHT.labels(model_name)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued_items(self) -> int:
        return sum(len(b) for b in self._batchers.values())

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of the model's request places for the duration of the block, or raise 429."""
        if self._in_flight >= self._max_requests:
            metrics.DROPPED.labels(self.model_name, "overloaded").inc()
            raise Overloaded(
                f"model '{self.model_name}' has {self._in_flight} requests in progress, its limit; retry shortly",
                retry_after_s=1.0,
            )
        self._in_flight += 1
        self._in_flight_gauge.inc()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._in_flight_gauge.dec()

    async def run(
        self, items: Sequence[tuple[np.ndarray, ...]], ticket: RequestTicket, on_device: bool = False
    ) -> tuple[list[ItemResult], BatchTiming]:
        """Run every item of one request; results in the items' order.

        If any item fails, the request's other items are dropped and the first error is raised.
        With `on_device`, image outputs come back as device tensors from slots that can keep them
        there (`DeviceOutputSlot`), as numpy arrays from any other slot.
        """
        loop = asyncio.get_running_loop()
        timing = BatchTiming(submitted_at=time.perf_counter())
        now = loop.time()
        work = [WorkItem(inputs, ticket, loop.create_future(), now, on_device=on_device) for inputs in items]
        for item in work:
            self._batcher(item).put(item)
        self._depth.inc(len(work))
        try:
            async with asyncio.timeout_at(ticket.deadline):
                results = await asyncio.gather(*(item.future for item in work))
        except TimeoutError:
            ticket.cancelled = True
            _drop(work)
            raise DeadlineExceeded("the request's deadline passed before its results were ready") from None
        except BaseException:
            ticket.cancelled = True
            _drop(work)
            raise
        timing.started_at = min(item.started_at or timing.submitted_at for item in work)
        timing.finished_at = max(item.finished_at or timing.submitted_at for item in work)
        metrics.QUEUE_SECONDS.labels(self.model_name).observe(timing.queue_s)
        return list(results), timing

    def _batcher(self, item: WorkItem) -> DynamicBatcher:
        key = item.shape_key
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = DynamicBatcher(self._policy, self.pool, on_retire=self._retire, on_dequeue=self._depth.dec)
            self._batchers[key] = batcher
        return batcher

    def _retire(self, batcher: DynamicBatcher) -> None:
        for key, value in list(self._batchers.items()):
            if value is batcher:
                del self._batchers[key]

    async def close(self) -> None:
        for batcher in list(self._batchers.values()):
            await batcher.close()
        self._batchers.clear()
        await self.pool.close()


def _drop(work: list[WorkItem]) -> None:
    for item in work:
        item.future.add_done_callback(_retrieve)
        item.future.cancel()


def _retrieve(future: asyncio.Future[ItemResult]) -> None:
    if not future.cancelled():
        future.exception()

"""Per-model scheduler: admission control in front of one dynamic batcher per input shape.

Admission refuses (429 `Overloaded`) when the model's request places are all taken, and, with
shedding by deadline, when the work queued ahead of a request would keep it past its deadline
(`service/scheduling/estimate.py`). Concurrency invariant: everything here runs on the event
loop's thread, so the counters need no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Iterator, Sequence

import numpy as np

from service import metrics
from service.errors import DeadlineExceeded, Overloaded
from service.scheduling.batcher import BatchPolicy, DynamicBatcher
from service.scheduling.estimate import ServiceTimeEstimate, deadline_refusal
from service.scheduling.records import BatchTiming, ItemResult, RequestTicket, WorkItem
from service.workers.pool import SlotPool

ShapeKey = tuple[object, ...]


class ModelScheduler:
    """Admits requests for one model and routes their items to the batcher of their shape."""

    def __init__(
        self,
        model_name: str,
        policy: BatchPolicy,
        pool: SlotPool,
        max_queued_requests: int,
        *,
        slots: int = 1,
        shed_by_deadline: bool = True,
    ) -> None:
        self.model_name = model_name
        self.pool = pool
        self.service_time = ServiceTimeEstimate(slots)
        self._policy = policy
        self._max_requests = max_queued_requests
        self._shed_by_deadline = shed_by_deadline
        self._in_flight = 0
        self._outstanding_items = 0  # submitted, not yet answered (queued or running)
        self._awaiting: set[RequestTicket] = set()  # admitted, items not yet submitted
        self._batchers: dict[ShapeKey, DynamicBatcher] = {}
        self._depth = metrics.QUEUE_DEPTH.labels(model_name)
        self._in_flight_gauge = metrics.IN_FLIGHT.labels(model_name)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued_items(self) -> int:
        return sum(len(b) for b in self._batchers.values())

    @property
    def items_ahead(self) -> int:
        """Work a newly admitted request would wait behind: items queued or running, plus one
        for each admitted request that has not submitted its items yet (still reading, decoding)."""
        return self._outstanding_items + len(self._awaiting)

    @contextlib.contextmanager
    def admit(self, ticket: RequestTicket, items: int = 1) -> Iterator[None]:
        """Hold one of the model's request places for the duration of the block, or raise 429.

        Refused at once with `Overloaded` when all `max_queued_requests` places are taken, or
        (shedding by deadline, once the service time has been measured) when the work ahead
        (`items_ahead`) plus the request's own `items` is expected to take longer than
        `estimate.HEADROOM` of the time left to `ticket.deadline`. A request's items are known
        only after its body is decoded, so front ends admit with the default estimate of one
        item: the check runs before anything is decoded or computed for the request, and a
        request that turns out to have many items is not checked again (if its deadline then
        passes, it is answered 504 as before).
        """
        self._refuse_if_full()
        if self._shed_by_deadline:
            self._refuse_if_too_late(ticket, items)
        self._in_flight += 1
        self._in_flight_gauge.inc()
        self._awaiting.add(ticket)
        try:
            yield
        finally:
            self._awaiting.discard(ticket)
            self._in_flight -= 1
            self._in_flight_gauge.dec()

    def _refuse_if_full(self) -> None:
        if self._in_flight >= self._max_requests:
            metrics.DROPPED.labels(self.model_name, "overloaded").inc()
            raise Overloaded(
                f"model '{self.model_name}' has {self._in_flight} requests in progress, its limit; retry shortly",
                retry_after_s=1.0,
            )

    def _refuse_if_too_late(self, ticket: RequestTicket, items: int) -> None:
        time_left = ticket.deadline - asyncio.get_running_loop().time()
        refusal = deadline_refusal(self.service_time, self.items_ahead, items, time_left)
        if refusal is not None:
            metrics.DROPPED.labels(self.model_name, "deadline_unreachable").inc()
            raise Overloaded(refusal.message(self.model_name), retry_after_s=refusal.retry_after_s)

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
        self._awaiting.discard(ticket)
        self._outstanding_items += len(work)
        for item in work:
            item.future.add_done_callback(functools.partial(self._answered, item))
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

    def _answered(self, item: WorkItem, future: asyncio.Future[ItemResult]) -> None:
        """Done-callback of every item: it no longer waits ahead of anyone; if it ran, its batch's
        times feed the service-time estimate.

        The pool answers all items of a batch in one step, so their callbacks run one after
        another; `close_batch`, scheduled from the first, runs after the last of them.
        """
        self._outstanding_items -= 1
        ran = not future.cancelled() and future.exception() is None
        if ran and item.started_at is not None and item.finished_at is not None:
            if not self.service_time.batch_open:
                future.get_loop().call_soon(self.service_time.close_batch)
            self.service_time.record_item(item.started_at, item.finished_at)
        if self._outstanding_items == 0:
            self.service_time.idle()

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

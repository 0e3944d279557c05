"""Dynamic batcher: one per (model, input shape).

Items wait in a deque until an execution slot is free; then the batcher gathers up to
`max_batch_size` items, waiting at most `max_queue_delay` after the oldest arrived. Items whose
request was cancelled are dropped and items past their deadline are answered `DeadlineExceeded`,
both before they run. When idle for `idle_timeout_s` the batcher retires itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from service.errors import Cancelled, DeadlineExceeded
from service.scheduling.records import WorkItem
from service.workers.pool import SlotPool


@dataclass(frozen=True)
class BatchPolicy:
    """How a batch is formed."""

    max_batch_size: int
    max_queue_delay_s: float
    idle_timeout_s: float = 30.0


class DynamicBatcher:
    """Queue + loop that turns work items of one shape into batches for a `SlotPool`."""

    def __init__(
        self,
        policy: BatchPolicy,
        pool: SlotPool,
        on_retire: Callable[[DynamicBatcher], None] = lambda _: None,
        on_dequeue: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._policy = policy
        self._pool = pool
        self._on_retire = on_retire
        self._on_dequeue = on_dequeue
        self._queue: deque[WorkItem] = deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: WorkItem) -> None:
        """Queue `item`; its future is answered exactly once (result, error or cancellation)."""
        self._queue.append(item)
        self._arrived.set()
        if self._task is None or self._task.done():
            # An empty context: the loop outlives the request that started it and serves others
            # (log lines of batches must not carry that first request's ID).
            self._task = asyncio.get_running_loop().create_task(self._serve(), context=contextvars.Context())

    async def close(self) -> None:
        """Stop the loop; queued items are answered `Cancelled`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all(Cancelled("the server is shutting down"))

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not await self._wait_for_items():
                self._on_retire(self)
                return
            worker = await self._pool.acquire()
            try:
                batch = await self.wait_for_batch(loop)
            except BaseException:
                self._pool.release(worker)
                raise
            if batch:
                self._pool.launch(worker, batch)
            else:
                self._pool.release(worker)

    async def _wait_for_items(self) -> bool:
        """True once an item is queued; False after `idle_timeout_s` with none."""
        while not self._queue:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), self._policy.idle_timeout_s)
            except TimeoutError:
                return bool(self._queue)
        return True

    async def wait_for_batch(self, loop: asyncio.AbstractEventLoop) -> list[WorkItem]:
        """Gather the next batch.

        Guarantees: returns 0..max_batch_size live items in arrival order (0 only when every
        queued item was dropped); returns as soon as max_batch_size live items are queued, or once
        `max_queue_delay` has passed since the oldest live item was queued; cancelled and expired
        items never appear in a batch, and their futures are answered here.
        """
        while True:
            self._prune(loop.time())
            if not self._queue:
                return []
            due = self._queue[0].enqueued_at + self._policy.max_queue_delay_s
            remaining = due - loop.time()
            if len(self._queue) >= self._policy.max_batch_size or remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        count = min(self._policy.max_batch_size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        self._on_dequeue(count)
        return batch

    def _prune(self, now: float) -> None:
        if not any(self._is_dead(item, now) for item in self._queue):
            return
        live: deque[WorkItem] = deque()
        for item in self._queue:
            if self._is_dead(item, now):
                self._answer_dead(item, now)
            else:
                live.append(item)
        self._on_dequeue(len(self._queue) - len(live))
        self._queue = live

    @staticmethod
    def _is_dead(item: WorkItem, now: float) -> bool:
        return item.future.done() or item.ticket.cancelled or item.ticket.expired(now)

    @staticmethod
    def _answer_dead(item: WorkItem, now: float) -> None:
        if item.future.done():
            return
        if item.ticket.cancelled:
            item.future.set_exception(Cancelled("the request was cancelled before it ran"))
        else:
            item.future.set_exception(DeadlineExceeded("the request's deadline passed while it waited in the queue"))

    def _fail_all(self, error: Exception) -> None:
        self._on_dequeue(len(self._queue))
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(error)

"""The dynamic batcher and slot pool in plain asyncio, with a slot gated on events."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from service.errors import Cancelled, DeadlineExceeded, InferenceFailed, UnrecoverableError
from service.scheduling.batcher import BatchPolicy, DynamicBatcher
from service.scheduling.records import RequestTicket, WorkItem
from service.workers.pool import SlotPool


class GatedSlot:
    """Doubles its input; records batch sizes; each batch waits until `gate` is set."""

    def __init__(self, gate: threading.Event | None = None, fail_with: Exception | None = None) -> None:
        self.batches: list[int] = []
        self.gate = gate
        self.fail_with = fail_with
        self.closed = False

    @property
    def description(self) -> str:
        return "gated slot"

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.gate is not None:
            assert self.gate.wait(5)
        self.batches.append(inputs[0].shape[0])
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        return [inputs[0] * 2]

    def close(self) -> None:
        self.closed = True


def _item(loop: asyncio.AbstractEventLoop, value: int, ticket: RequestTicket | None = None) -> WorkItem:
    ticket = ticket or RequestTicket(deadline=loop.time() + 60)
    return WorkItem((np.full((2, 2, 3), value, np.uint8),), ticket, loop.create_future(), loop.time())


async def _pool(slot: GatedSlot, count: int = 1) -> SlotPool:
    observed: list[int] = []
    pool = SlotPool("test", lambda index: slot, count, lambda size, seconds: observed.append(size))
    await pool.start(None)
    return pool


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_full_batch_goes_at_once_and_results_fan_back_in_order() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        slot = GatedSlot()
        batcher = DynamicBatcher(BatchPolicy(4, max_queue_delay_s=10.0), await _pool(slot))
        items = [_item(loop, v) for v in range(4)]
        for item in items:
            batcher.put(item)
        results = await asyncio.wait_for(asyncio.gather(*(i.future for i in items)), 2.0)
        assert [int(r[0][0, 0, 0]) for r in results] == [0, 2, 4, 6]
        assert slot.batches == [4]
        await batcher.close()

    run(scenario())


def test_partial_batch_waits_for_the_queue_delay() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        slot = GatedSlot()
        batcher = DynamicBatcher(BatchPolicy(8, max_queue_delay_s=0.2), await _pool(slot))
        first = _item(loop, 1)
        batcher.put(first)
        await asyncio.sleep(0.05)
        assert not first.future.done()  # still waiting for company
        second = _item(loop, 2)
        batcher.put(second)
        await asyncio.wait_for(asyncio.gather(first.future, second.future), 2.0)
        assert slot.batches == [2]
        await batcher.close()

    run(scenario())


def test_items_queue_up_while_the_slot_is_busy_and_form_the_next_batch() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        gate = threading.Event()
        slot = GatedSlot(gate)
        batcher = DynamicBatcher(BatchPolicy(8, max_queue_delay_s=0.0), await _pool(slot))
        first = _item(loop, 1)
        batcher.put(first)
        await asyncio.sleep(0.05)  # first batch of 1 is now running, blocked on the gate
        rest = [_item(loop, v) for v in range(5)]
        for item in rest:
            batcher.put(item)
        gate.set()
        await asyncio.wait_for(asyncio.gather(first.future, *(i.future for i in rest)), 2.0)
        assert slot.batches == [1, 5]
        await batcher.close()

    run(scenario())


def test_cancelled_and_expired_items_are_dropped_before_they_run() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        gate = threading.Event()
        slot = GatedSlot(gate)
        batcher = DynamicBatcher(BatchPolicy(8, max_queue_delay_s=0.0), await _pool(slot))
        blocker = _item(loop, 0)
        batcher.put(blocker)
        await asyncio.sleep(0.05)
        gone = RequestTicket(deadline=loop.time() + 60)
        late = RequestTicket(deadline=loop.time() + 0.01)
        cancelled, expired, alive = _item(loop, 1, gone), _item(loop, 2, late), _item(loop, 3)
        for item in (cancelled, expired, alive):
            batcher.put(item)
        gone.cancelled = True
        await asyncio.sleep(0.05)  # `late` expires while the slot is busy
        gate.set()
        with pytest.raises(Cancelled):
            await asyncio.wait_for(cancelled.future, 2.0)
        with pytest.raises(DeadlineExceeded):
            await asyncio.wait_for(expired.future, 2.0)
        result = await asyncio.wait_for(alive.future, 2.0)
        assert int(result[0][0, 0, 0]) == 6
        assert slot.batches == [1, 1]  # the blocker, then only the live item
        await batcher.close()

    run(scenario())


def test_a_failing_batch_fails_only_its_own_items() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        slot = GatedSlot(fail_with=RuntimeError("boom"))
        batcher = DynamicBatcher(BatchPolicy(2, max_queue_delay_s=0.0), await _pool(slot))
        doomed = _item(loop, 1)
        batcher.put(doomed)
        with pytest.raises(InferenceFailed):
            await asyncio.wait_for(doomed.future, 2.0)
        fine = _item(loop, 2)
        batcher.put(fine)
        assert int((await asyncio.wait_for(fine.future, 2.0))[0][0, 0, 0]) == 4
        await batcher.close()

    run(scenario())


def test_an_unrecoverable_error_restarts_the_slot_and_flips_health() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        created: list[GatedSlot] = []
        gate = threading.Event()

        def factory(index: int) -> GatedSlot:
            slot = GatedSlot(fail_with=UnrecoverableError("device lost") if not created else None)
            if created:  # the replacement takes a while to build
                assert gate.wait(5)
            created.append(slot)
            return slot

        pool = SlotPool("test", factory, 1, lambda size, seconds: None)
        await pool.start(None)
        batcher = DynamicBatcher(BatchPolicy(2, max_queue_delay_s=0.0), pool)
        doomed = _item(loop, 1)
        batcher.put(doomed)
        with pytest.raises(UnrecoverableError):
            await asyncio.wait_for(doomed.future, 2.0)
        await asyncio.sleep(0.05)
        assert not pool.healthy and created[0].closed
        gate.set()
        after = _item(loop, 5)
        batcher.put(after)
        assert int((await asyncio.wait_for(after.future, 2.0))[0][0, 0, 0]) == 10
        assert pool.healthy and len(created) == 2
        await batcher.close()

    run(scenario())


def test_batch_size_mismatch_is_an_error_not_a_silent_loss() -> None:
    class Short(GatedSlot):
        def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            return [inputs[0][:1]]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        batcher = DynamicBatcher(BatchPolicy(4, max_queue_delay_s=10.0), await _pool(Short()))
        items = [_item(loop, v) for v in range(4)]
        for item in items:
            batcher.put(item)
        for item in items:
            with pytest.raises(InferenceFailed, match="returned 1 results for a batch of 4"):
                await asyncio.wait_for(item.future, 2.0)
        await batcher.close()

    run(scenario())


def test_idle_batcher_retires_and_a_new_put_restarts_it() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        retired: list[DynamicBatcher] = []
        batcher = DynamicBatcher(
            BatchPolicy(2, max_queue_delay_s=0.0, idle_timeout_s=0.05),
            await _pool(GatedSlot()),
            on_retire=retired.append,
        )
        first = _item(loop, 1)
        batcher.put(first)
        await asyncio.wait_for(first.future, 2.0)
        await asyncio.sleep(0.2)
        assert retired == [batcher]
        again = _item(loop, 3)
        batcher.put(again)
        assert int((await asyncio.wait_for(again.future, 2.0))[0][0, 0, 0]) == 6

    run(scenario())

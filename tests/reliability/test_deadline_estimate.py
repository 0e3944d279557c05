"""Shedding by deadline, in plain asyncio: the service-time estimate driven with recorded
durations, the admission decision it makes, and the scheduler learning it from real batches
(service/scheduling/estimate.py, ModelScheduler.admit). No sleeping, no timed asserts."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.errors import Overloaded
from service.scheduling.batcher import BatchPolicy
from service.scheduling.estimate import (
    FALL,
    HEADROOM,
    MIN_BATCHES,
    RETRY_AFTER_MAX_S,
    RISE,
    DeadlineRefusal,
    ServiceTimeEstimate,
    deadline_refusal,
)
from service.scheduling.records import RequestTicket
from service.scheduling.scheduler import ModelScheduler
from service.workers.pool import SlotPool


def _warm(per_item_s: float, slots: int = 1, size: int = 1) -> ServiceTimeEstimate:
    estimate = ServiceTimeEstimate(slots)
    for _ in range(MIN_BATCHES):
        estimate.record_batch(size, per_item_s * size)
    return estimate


def test_the_estimate_is_cold_until_enough_batches_were_measured() -> None:
    estimate = ServiceTimeEstimate(min_batches=3)
    estimate.record_batch(2, 1.0)
    estimate.record_batch(2, 1.0)
    assert estimate.per_item_s is None and estimate.expected_wait_s(100) is None
    assert deadline_refusal(estimate, items_ahead=10_000, own_items=1, time_left_s=0.01) is None
    estimate.record_batch(2, 1.0)
    assert estimate.per_item_s == pytest.approx(0.5) and estimate.per_batch_s == pytest.approx(1.0)


def test_the_averages_believe_slowdowns_at_once_and_speedups_gradually() -> None:
    estimate = ServiceTimeEstimate(min_batches=1)
    estimate.record_batch(4, 2.0)  # 0.5 s per item
    estimate.record_batch(1, 1.5)  # slower: weight RISE
    assert estimate.per_item_s == pytest.approx(0.5 + RISE * 1.0)
    slow = 0.5 + RISE * 1.0
    estimate.record_batch(1, 0.0)  # faster: weight FALL
    assert estimate.per_item_s == pytest.approx(slow - FALL * slow)
    estimate.record_batch(0, 9.0)  # nonsense is ignored
    estimate.record_batch(1, float("nan"))
    assert estimate.batches == 3


def test_items_with_the_same_times_are_one_batch() -> None:
    estimate = ServiceTimeEstimate(min_batches=1)
    for _ in range(4):
        estimate.record_item(10.0, 12.0)  # a batch of 4 that computed for 2 s
    assert estimate.batch_open and estimate.batches == 0
    estimate.idle()  # nothing left after it: the next batch is timed on its own
    estimate.record_item(20.0, 21.0)  # the next batch closes the first
    assert estimate.batches == 1 and estimate.per_item_s == pytest.approx(0.5)
    estimate.close_batch()
    assert not estimate.batch_open and estimate.per_batch_s == pytest.approx(2.0 + FALL * (1.0 - 2.0))
    estimate.close_batch()  # nothing open: nothing changes
    assert estimate.batches == 2


def test_while_backlogged_a_batch_costs_the_time_since_the_previous_one_ended() -> None:
    """Compute time misses the gaps between batches; a backlogged model's pace includes them."""
    estimate = ServiceTimeEstimate(slots=1, min_batches=1)
    for started, finished in [(0.0, 1.0), (1.5, 2.5), (3.0, 4.0)]:  # 1 s of compute, 0.5 s gaps
        estimate.record_item(started, finished)
        estimate.record_item(started, finished)
        estimate.close_batch()
    assert estimate.batches == 3
    first = 1.0  # nothing before it: its compute time
    assert estimate.per_batch_s == pytest.approx(first + RISE * (1.5 - first) + RISE * (1.5 - (first + RISE * 0.5)))
    estimate.idle()
    estimate.record_item(10.0, 11.0)  # after an idle spell: compute time again
    estimate.close_batch()
    assert estimate.per_batch_s is not None and estimate.per_batch_s < 1.5


def test_with_several_slots_the_time_between_batch_ends_counts_per_slot() -> None:
    estimate = ServiceTimeEstimate(slots=2, min_batches=1)
    for started, finished in [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]:  # two slots, 1 s each, staggered
        estimate.record_item(started, finished)
        estimate.close_batch()
    assert estimate.per_item_s == pytest.approx(1.0), "0.5 s between batch ends on 2 slots: 1 s per slot"
    assert estimate.expected_wait_s(10) == pytest.approx(5.0)


def test_the_expected_wait_is_the_work_ahead_shared_by_the_slots() -> None:
    estimate = _warm(0.8, slots=4)
    assert estimate.expected_wait_s(50) == pytest.approx(10.0)
    assert estimate.own_work_s(1) == pytest.approx(0.8), "one item runs on one slot"
    assert estimate.own_work_s(9) == pytest.approx(3 * 0.8)
    batched = _warm(0.25, size=4)
    assert batched.own_work_s(1) == pytest.approx(1.0), "an item is done when its (full) batch is"


def test_a_request_is_refused_when_the_work_ahead_and_its_own_outlast_its_deadline() -> None:
    estimate = _warm(1.0)
    refusal = deadline_refusal(estimate, items_ahead=41, own_items=1, time_left_s=30.0)
    assert refusal == DeadlineRefusal(wait_s=41.0, own_s=1.0, time_left_s=30.0)
    assert refusal.retry_after_s == 42 - HEADROOM * 30
    message = refusal.message("sr-x2")
    assert "model 'sr-x2' has about 41 s of work queued" in message and "30 s deadline" in message
    assert f"retry in about {42 - HEADROOM * 30:.0f} s" in message and "X-Request-Timeout" in message
    fits = int(HEADROOM * 30) - 1  # that many ahead plus its own item fit in the headroom
    assert deadline_refusal(estimate, items_ahead=fits, own_items=1, time_left_s=30.0) is None
    assert deadline_refusal(estimate, items_ahead=fits + 1, own_items=1, time_left_s=30.0) is not None
    assert deadline_refusal(_warm(1.0, slots=2), items_ahead=41, own_items=1, time_left_s=30.0) is None


def test_retry_after_is_bounded() -> None:
    assert DeadlineRefusal(wait_s=0.5, own_s=0.1, time_left_s=0.5).retry_after_s == 1.0
    assert DeadlineRefusal(wait_s=900.0, own_s=1.0, time_left_s=1.0).retry_after_s == RETRY_AFTER_MAX_S


class GatedSlot:
    """Doubles its input; records batch sizes; each batch waits until `gate` is set."""

    def __init__(self, gate: threading.Event) -> None:
        self.batches: list[int] = []
        self.gate = gate

    @property
    def description(self) -> str:
        return "gated slot"

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        assert self.gate.wait(10)
        self.batches.append(inputs[0].shape[0])
        return [inputs[0] * 2]

    def close(self) -> None:
        pass


def _scheduler(pool: SlotPool, name: str, max_queued: int = 64, shed: bool = True) -> ModelScheduler:
    policy = BatchPolicy(max_batch_size=4, max_queue_delay_s=0.001)
    return ModelScheduler(name, policy, pool, max_queued, slots=1, shed_by_deadline=shed)


def _dropped(model: str, reason: str) -> float:
    value = REGISTRY.get_sample_value("filters_dropped_total", {"model": model, "reason": reason})
    return value or 0.0


def _ticket(loop: asyncio.AbstractEventLoop, seconds: float) -> RequestTicket:
    return RequestTicket(deadline=loop.time() + seconds)


def test_admit_refuses_at_once_when_the_admitted_work_outlasts_the_deadline() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pool = SlotPool("unit-shed", lambda index: GatedSlot(threading.Event()), 1, lambda size, s: None)
        scheduler = _scheduler(pool, "unit-shed")
        for _ in range(MIN_BATCHES):
            scheduler.service_time.record_batch(1, 1.0)  # 1 s per item and per batch
        before = _dropped("unit-shed", "deadline_unreachable")
        with scheduler.admit(_ticket(loop, 60)), scheduler.admit(_ticket(loop, 60)), scheduler.admit(_ticket(loop, 60)):
            assert scheduler.items_ahead == 3, "admitted, not yet decoded: one item each"
            with pytest.raises(Overloaded) as refused, scheduler.admit(_ticket(loop, 2.0)):
                pass
            with scheduler.admit(_ticket(loop, 4.0 / HEADROOM + 0.5)):  # 3 ahead + 1 of its own = 4 s
                assert scheduler.in_flight == 4
        assert "about 3.0 s of work queued" in str(refused.value) and "2.0 s deadline" in str(refused.value)
        assert refused.value.retry_after_s == math.ceil(4.0 - HEADROOM * 2.0)
        assert _dropped("unit-shed", "deadline_unreachable") == before + 1
        assert scheduler.in_flight == 0 and scheduler.items_ahead == 0, "a refusal holds no place"

    asyncio.run(scenario())


def test_without_shedding_or_while_cold_admit_only_counts_places() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pool = SlotPool("unit-noshed", lambda index: GatedSlot(threading.Event()), 1, lambda size, s: None)
        off = _scheduler(pool, "unit-noshed", max_queued=2, shed=False)
        for _ in range(MIN_BATCHES):
            off.service_time.record_batch(1, 100.0)
        cold = _scheduler(pool, "unit-cold")
        with off.admit(_ticket(loop, 0.1)), off.admit(_ticket(loop, 0.1)), cold.admit(_ticket(loop, 0.1)):
            with pytest.raises(Overloaded) as full, off.admit(_ticket(loop, 60)):
                pass
            assert "2 requests in progress" in str(full.value)

    asyncio.run(scenario())


def test_the_scheduler_learns_from_the_batches_it_runs_and_counts_work_ahead() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        gate = threading.Event()
        slot = GatedSlot(gate)
        pool = SlotPool("unit-learn", lambda index: slot, 1, lambda size, s: None)
        await pool.start(None)
        scheduler = _scheduler(pool, "unit-learn")
        items = [(np.full((2, 2, 3), v, np.uint8),) for v in range(10)]
        ticket = _ticket(loop, 60)
        with scheduler.admit(ticket):
            assert scheduler.items_ahead == 1
            task = loop.create_task(scheduler.run(items, ticket))
            while scheduler.items_ahead != len(items):
                await asyncio.sleep(0)  # run() has submitted its items: counted as they are
            gate.set()
            results, _ = await task
        await asyncio.sleep(0)  # the last batch's close_batch, scheduled with call_soon
        assert [int(r[0][0, 0, 0]) for r in results] == [2 * v for v in range(10)]
        assert scheduler.items_ahead == 0
        assert scheduler.service_time.batches == len(slot.batches) and sum(slot.batches) == 10
        assert scheduler.service_time.per_item_s is not None and scheduler.service_time.per_item_s > 0
        await scheduler.close()

    asyncio.run(scenario())

"""`ordered_window` in plain asyncio, gated on events: order, the window bound, errors, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from service.grpc.streaming import ordered_window


class Source:
    """An async iterator of 0..n-1 that records how many items were taken from it."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at, self.taken = n, fail_at, 0

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> int:
        if self.taken == self.fail_at:
            raise ValueError(f"bad request {self.taken}")
        if self.taken >= self.n:
            raise StopAsyncIteration
        self.taken += 1
        return self.taken - 1


def test_results_come_in_request_order_when_later_requests_finish_first() -> None:
    async def scenario() -> list[int]:
        gates = [asyncio.Event() for _ in range(4)]
        finished: list[int] = []

        async def handle(i: int) -> int:
            await gates[i].wait()
            finished.append(i)
            return i * 10

        async def release_backwards() -> None:
            for gate in reversed(gates):
                await asyncio.sleep(0)
                gate.set()

        releaser = asyncio.create_task(release_backwards())
        results = [r async for r in ordered_window(Source(4), handle, window=4)]
        await releaser
        assert finished == [3, 2, 1, 0]
        return results

    assert asyncio.run(scenario()) == [0, 10, 20, 30]


def test_a_consumer_that_stops_taking_results_stops_the_reading() -> None:
    async def scenario() -> tuple[int, int, list[int]]:
        source = Source(100)

        async def handle(i: int) -> int:
            return i

        stream: AsyncIterator[int] = ordered_window(source, handle, window=3)
        first = await anext(stream)
        for _ in range(20):  # let the reader run as far as it may
            await asyncio.sleep(0)
        taken_while_stalled = source.taken
        rest = [r async for r in stream]
        return first, taken_while_stalled, rest

    first, taken, rest = asyncio.run(scenario())
    assert first == 0
    assert taken == 3  # the window: the result being handed out counts until the consumer comes back
    assert rest == list(range(1, 100))


def test_a_failing_handler_ends_the_stream_after_the_results_before_it() -> None:
    async def scenario() -> tuple[list[int], bool]:
        cancelled = asyncio.Event()
        blocker = asyncio.Event()

        async def handle(i: int) -> int:
            if i == 2:
                raise RuntimeError("frame 2 failed")
            if i == 3:
                try:
                    await blocker.wait()
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
            return i

        got: list[int] = []
        with pytest.raises(RuntimeError, match="frame 2 failed"):
            async for r in ordered_window(Source(4), handle, window=4):
                got.append(r)
        await asyncio.wait_for(cancelled.wait(), 5)
        return got, cancelled.is_set()

    got, cancelled = asyncio.run(scenario())
    assert got == [0, 1]
    assert cancelled  # the handler still running was cancelled


def test_a_failing_read_is_raised_after_the_requests_already_read() -> None:
    async def scenario() -> list[int]:
        async def handle(i: int) -> int:
            return i

        got: list[int] = []
        with pytest.raises(ValueError, match="bad request 3"):
            async for r in ordered_window(Source(10, fail_at=3), handle, window=2):
                got.append(r)
        return got

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_closing_the_stream_cancels_every_handler_in_flight() -> None:
    async def scenario() -> int:
        started, cancelled = asyncio.Semaphore(0), []
        forever = asyncio.Event()

        async def handle(i: int) -> int:
            started.release()
            try:
                await forever.wait()
            except asyncio.CancelledError:
                cancelled.append(i)
                raise
            return i

        async def consume() -> None:
            async for _ in ordered_window(Source(10), handle, window=3):
                pass

        consumer = asyncio.create_task(consume())
        for _ in range(3):
            await started.acquire()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        for _ in range(10):
            await asyncio.sleep(0)
        return len(cancelled)

    assert asyncio.run(scenario()) == 3

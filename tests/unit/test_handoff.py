"""The loop -> thread hand-off of the video encoder: order, the bound, and closing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.pipelines.bridge import ChannelClosed
from service.pipelines.handoff import HandOff


def test_items_arrive_in_order_and_at_most_maxsize_wait() -> None:
    async def run() -> tuple[list[int], int]:
        handoff: HandOff[int] = HandOff(4, batch=2)
        got: list[int] = []
        queued_most = 0

        def consume() -> None:
            for _ in range(30):
                got.append(handoff.get_blocking())
                time.sleep(0.001)

        thread = threading.Thread(target=consume)
        thread.start()
        for i in range(30):
            await handoff.put(i)
            queued_most = max(queued_most, i + 1 - len(got))
        await asyncio.to_thread(thread.join)
        return got, queued_most

    got, queued_most = asyncio.run(run())
    assert got == list(range(30))
    assert 1 <= queued_most <= 4


def test_a_full_handoff_makes_the_putter_wait_until_the_thread_takes_a_batch() -> None:
    async def run() -> tuple[bool, bool, bool]:
        handoff: HandOff[int] = HandOff(2, batch=2)
        await handoff.put(1)
        await handoff.put(2)
        full_before = handoff.full
        third = asyncio.ensure_future(handoff.put(3))
        await asyncio.sleep(0.05)
        waited = not third.done()
        await asyncio.to_thread(lambda: [handoff.get_blocking(), handoff.get_blocking()])
        await asyncio.wait_for(third, 2)
        return full_before, waited, handoff.empty

    full_before, waited, empty = asyncio.run(run())
    assert full_before and waited and not empty  # 3 is queued now


def test_close_releases_the_thread_and_a_blocked_putter() -> None:
    async def run() -> list[str]:
        handoff: HandOff[int] = HandOff(1)
        outcome: list[str] = []

        def consume() -> None:
            try:
                while True:
                    handoff.get_blocking()
                    time.sleep(0.2)  # slow: the putter blocks meanwhile
            except ChannelClosed:
                outcome.append("thread released")

        thread = threading.Thread(target=consume)
        thread.start()
        await handoff.put(1)
        await handoff.put(2)  # waits for the thread's first get to give room back
        blocked = asyncio.ensure_future(handoff.put(3))
        await asyncio.sleep(0.05)
        handoff.close()
        with pytest.raises(ChannelClosed):
            await asyncio.wait_for(blocked, 2)
        outcome.append("putter released")
        with pytest.raises(ChannelClosed):
            await handoff.put(4)
        await asyncio.to_thread(thread.join, 5)
        return outcome

    assert sorted(asyncio.run(run())) == ["putter released", "thread released"]

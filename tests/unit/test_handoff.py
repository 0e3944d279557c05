"""The loop -> thread hand-off of the video encoder: order, the bound, and closing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.pipelines.bridge import ChannelClosed
from service.pipelines.handoff import HandOff, Inbox


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
    assert 1 <= queued_most <= 5  # 4 queued, and one taken whose append the loop may not see yet


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


# Inbox: one thread -> the loop (the video decoder's frames)


def test_inbox_items_arrive_in_order_and_the_thread_waits_for_room() -> None:
    async def run() -> tuple[list[int], int]:
        inbox: Inbox[int] = Inbox(3)
        got: list[int] = []
        queued_most = 0

        def produce() -> None:
            nonlocal queued_most
            for i in range(40):
                inbox.put_blocking(i)
                queued_most = max(queued_most, i + 1 - len(got))

        thread = threading.Thread(target=produce)
        thread.start()
        for _ in range(40):
            got.append(await inbox.get())
            await asyncio.sleep(0.001)
        await asyncio.to_thread(thread.join)
        return got, queued_most

    got, queued_most = asyncio.run(run())
    assert got == list(range(40))
    assert 1 <= queued_most <= 4  # 3 queued, and one just taken but not yet counted


def test_inbox_wakes_the_loop_only_while_it_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.pipelines import handoff

    wakes = []
    original = handoff._wake
    monkeypatch.setattr(handoff, "_wake", lambda waiter: (wakes.append(1), original(waiter)))

    async def run() -> list[int]:
        inbox: Inbox[int] = Inbox(16)
        for i in range(10):  # the thread is ahead: nothing to wake
            await asyncio.to_thread(inbox.put_blocking, i)
        got = [await inbox.get() for _ in range(10)]
        assert wakes == []
        later = asyncio.get_running_loop().call_later(
            0.05, lambda: threading.Thread(target=inbox.put_blocking, args=(10,)).start()
        )
        got.append(await inbox.get())  # waits: the put wakes it
        later.cancel()
        return got

    assert asyncio.run(run()) == list(range(11))
    assert wakes == [1]


def test_closing_an_inbox_releases_a_blocked_thread_and_a_waiting_loop() -> None:
    async def run() -> tuple[bool, bool]:
        full: Inbox[int] = Inbox(1)
        full.put_blocking(0)
        refused = threading.Event()

        def put_one_more() -> None:
            try:
                full.put_blocking(1)
            except ChannelClosed:
                refused.set()

        thread = threading.Thread(target=put_one_more)
        thread.start()
        await asyncio.sleep(0.05)
        full.close()
        await asyncio.to_thread(thread.join, 5)

        empty: Inbox[int] = Inbox(1)
        getter = asyncio.create_task(empty.get())
        await asyncio.sleep(0.01)
        empty.close()
        with pytest.raises(ChannelClosed):
            await getter
        with pytest.raises(ChannelClosed):
            await full.get()  # what was queued is dropped
        return refused.is_set(), getter.done()

    assert asyncio.run(run()) == (True, True)

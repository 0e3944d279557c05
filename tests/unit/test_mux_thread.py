"""The video writer's mux thread: order kept, failures reach the encoder's thread, never a hang."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from service.media.mux_thread import MuxThread


def test_packets_are_muxed_in_submission_order_on_another_thread() -> None:
    muxed: list[int] = []
    threads: set[str] = set()

    def mux(packets: Sequence[int]) -> None:
        threads.add(threading.current_thread().name)
        muxed.extend(packets)

    muxer = MuxThread(mux)
    for start in range(0, 300, 3):
        muxer.submit([start, start + 1, start + 2])
    muxer.submit([])
    muxer.finish()
    assert muxed == list(range(300))
    assert threads == {"video-mux"}


def test_a_mux_failure_is_raised_to_the_submitter_which_never_blocks() -> None:
    release = threading.Event()

    def mux(packets: Sequence[int]) -> None:
        release.wait(5)
        if packets[0] == 2:
            raise OSError("the sink is gone")

    muxer = MuxThread(mux)
    muxer.submit([1])
    muxer.submit([2])
    release.set()
    with pytest.raises(OSError, match="sink is gone"):
        for i in range(3, 10_000):  # far more than the queue holds: the failed muxer keeps draining
            muxer.submit([i])
    with pytest.raises(OSError, match="sink is gone"):
        muxer.finish()


def test_stop_ends_the_thread_without_raising() -> None:
    def mux(packets: Sequence[int]) -> None:
        raise RuntimeError("broken")

    muxer = MuxThread(mux)
    muxer.submit([1])
    muxer.stop()
    assert not [t for t in threading.enumerate() if t.name == "video-mux" and t.is_alive()]

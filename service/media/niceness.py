"""The encoder's threads yield the CPU to the rest of the server.

libx264 at 3840x2160 keeps most cores of a 16-core host busy with ~24 CPU-bound threads. The
video pipeline that feeds it, and any image request the same process serves meanwhile, are chains
of short steps (decode, RGB, batcher, model slots, 4:2:0 hand-over, the event loop) that each need
a core at once to keep latency low. A few nice steps lower for the encoder lets them run as soon as
they are ready; the encoder still gets every core they leave idle, so alone it runs as fast as
before. On the H200 video benchmark alone the effect was within the run-to-run spread (nice 0 / 5 /
10: 171.5 / 174.8 / 180.5 frames/s, bench/results/video_h200_niceness_720.md): this is a guard for
shared hosts, not a measured speed-up.

Linux's nice value belongs to each thread, and a new thread starts with its creator's: lowering
the writer thread before it opens the encoder lowers libx264's worker threads, the muxer thread
and the parallel segment encoders with it.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)
MAX_NICE = 19


def lower_this_thread(steps: int) -> int | None:
    """Lower the calling thread's CPU priority by `steps` nice steps (up to 19); the new nice
    value, or None where that is not possible (no per-thread nice: not Linux; refused)."""
    if steps <= 0 or not hasattr(os, "setpriority"):
        return None
    thread = threading.get_native_id()
    try:
        niceness = min(MAX_NICE, os.getpriority(os.PRIO_PROCESS, thread) + steps)
        os.setpriority(os.PRIO_PROCESS, thread, niceness)
    except OSError as exc:
        log.debug("the encoder thread keeps its priority: %s", exc)
        return None
    return niceness

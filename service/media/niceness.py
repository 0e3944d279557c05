"""The encoder's threads yield the CPU to the rest of the video pipeline.

libx264 at 3840x2160 keeps every core of a 16-core host busy with ~24 threads. The pipeline that
feeds it is a chain of short steps on other threads (decode, RGB, batcher, model slots, 4:2:0
hand-over), and at equal priority each step waits behind the encoder's threads for a core: on the
H200 the pipeline fed 315-334 frames/s to an encoder that took them at once, but under 200 to the
real one, which itself can take 250 (bench/results/video_h200_pipeline_ceiling.md). A few nice
steps lower for the encoder lets every pipeline step run as soon as it is ready; the encoder still
gets every core the pipeline leaves idle, so alone it runs as fast as before.

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

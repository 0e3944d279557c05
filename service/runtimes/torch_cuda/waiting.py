"""Waiting for CUDA work: sleeping (the default) or spinning, one choice per process.

`torch.cuda.Stream.synchronize()` and blocking device-to-host copies wait the way the CUDA
context is scheduled, and with the default schedule and fewer contexts than cores that means
spinning: a py-spy profile of the H200 side-by-side showed ~0.8 of a core inside
`Stream.synchronize` (bench/results/profiles/side_by_side_h200_profiled.md) on a host whose CPU
was the limit. An event created with `blocking=True` puts the waiting thread to sleep until the
GPU reaches it instead, and wakes it some microseconds later than a spinning thread would notice.
`FILTERS_GPU_WAIT=spin` keeps torch's spinning (for a host with cores to spare and latency to
win; bench/results/side_by_side_h200_tuning2.md measures both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # torch is imported where used: servers without it import this module too
    import torch

GpuWait = Literal["block", "spin"]
_mode: list[GpuWait] = ["block"]


def set_mode(mode: GpuWait) -> None:
    """How every later `wait_for` waits (the server sets it from FILTERS_GPU_WAIT at start)."""
    _mode[0] = mode


def wait_for(stream: torch.cuda.Stream) -> None:
    """Block until all work queued on `stream` so far is done (sleeping, unless the mode is spin)."""
    import torch

    if _mode[0] == "spin":
        stream.synchronize()
        return
    event = torch.cuda.Event(blocking=True)  # type: ignore[no-untyped-call]
    event.record(stream)
    event.synchronize()


def wait_for_current(device: torch.device) -> None:
    """`wait_for` the current stream of `device` (a CUDA device)."""
    import torch

    wait_for(torch.cuda.current_stream(device))

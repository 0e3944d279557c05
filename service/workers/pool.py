"""Execution slots of one model and the threads that drive them.

Each slot has one dedicated thread, so a session/context is only ever entered from that thread.
The pool hands out free slots in FIFO order to the batchers of the model (one per input shape),
runs a batch on the slot's thread, fans results and errors back to the item futures that are not
yet done, and restarts a slot that reports itself broken (`UnrecoverableError`); while a slot is
restarting the pool reports unhealthy, which fails readiness.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InferenceFailed, ServiceError, UnrecoverableError
from service.runtimes.base import DeviceOutputSlot, ExecutionSlot, PinnedInputSlot
from service.scheduling.records import ItemResult, WorkItem

log = logging.getLogger(__name__)

SlotFactory = Callable[[int], ExecutionSlot]
BatchObserver = Callable[[int, float], None]


@dataclass(eq=False)
class SlotWorker:
    """A slot together with the one thread allowed to use it."""

    index: int
    slot: ExecutionSlot
    thread: ThreadPoolExecutor


def run_batch(
    slot: ExecutionSlot, items: Sequence[tuple[np.ndarray, ...]], on_device: bool = False
) -> list[ItemResult]:
    """Stack items into a batch, run it, and split the outputs back per item (on the slot thread).

    One item is not copied (a batch-of-one view). A slot with staging memory of its own
    (`PinnedInputSlot`) gets the items stacked straight into it: one host copy from the decoded
    image to what the GPU reads. With `on_device`, a `DeviceOutputSlot` keeps the outputs on the
    device and the items get device tensors.
    """
    stacked = [_stack(slot, index, column) for index, column in enumerate(zip(*items, strict=True))]
    if on_device and isinstance(slot, DeviceOutputSlot):
        outputs: list[Any] = slot.infer_on_device(stacked)
    else:
        outputs = slot.infer(stacked)
    for out in outputs:
        if out.shape[0] != len(items):
            raise InferenceFailed(f"the model returned {out.shape[0]} results for a batch of {len(items)}")
    return [tuple(out[i] for out in outputs) for i in range(len(items))]


def _stack(slot: ExecutionSlot, index: int, column: tuple[np.ndarray, ...]) -> np.ndarray:
    if len(column) == 1:
        return column[0][np.newaxis]
    shape = (len(column), *column[0].shape)
    if isinstance(slot, PinnedInputSlot) and all(a.shape == column[0].shape for a in column):
        return np.stack(column, out=slot.input_buffer(index, shape, column[0].dtype))
    return np.stack(column)


class SlotPool:
    """All execution slots of one model on this server."""

    def __init__(self, model_name: str, factory: SlotFactory, count: int, observe: BatchObserver) -> None:
        self.model_name = model_name
        self._factory = factory
        self._count = count
        self._observe = observe
        self._free: asyncio.Queue[SlotWorker] = asyncio.Queue()
        self._workers: list[SlotWorker] = []
        self._restarting = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def healthy(self) -> bool:
        return self._restarting == 0 and len(self._workers) == self._count

    @property
    def outputs_on_device(self) -> bool:
        """Whether every slot can keep its outputs on its device (`DeviceOutputSlot`)."""
        return bool(self._workers) and all(isinstance(w.slot, DeviceOutputSlot) for w in self._workers)

    @property
    def descriptions(self) -> list[str]:
        return [w.slot.description for w in self._workers]

    async def start(self, warmup: Callable[[ExecutionSlot], None] | None) -> None:
        """Create every slot on its own thread and warm it up."""
        loop = asyncio.get_running_loop()
        for index in range(self._count):
            thread = ThreadPoolExecutor(1, thread_name_prefix=f"slot-{self.model_name}-{index}")
            slot = await loop.run_in_executor(thread, self._factory, index)
            if warmup is not None:
                await loop.run_in_executor(thread, warmup, slot)
            worker = SlotWorker(index, slot, thread)
            self._workers.append(worker)
            self._free.put_nowait(worker)

    async def acquire(self) -> SlotWorker:
        return await self._free.get()

    def release(self, worker: SlotWorker) -> None:
        self._free.put_nowait(worker)

    def launch(self, worker: SlotWorker, batch: list[WorkItem]) -> None:
        """Run `batch` on `worker` in the background; the worker is released when it ends."""
        task = asyncio.get_running_loop().create_task(self._execute(worker, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, worker: SlotWorker, batch: list[WorkItem]) -> None:
        loop = asyncio.get_running_loop()
        live = [item for item in batch if not item.future.done() and not item.ticket.cancelled]
        broken = False
        try:
            if live:
                started = time.perf_counter()
                for item in live:
                    item.started_at = started
                inputs = [i.inputs for i in live]
                results = await loop.run_in_executor(worker.thread, run_batch, worker.slot, inputs, live[0].on_device)
                finished = time.perf_counter()
                self._observe(len(live), finished - started)
                for item, result in zip(live, results, strict=True):
                    item.finished_at = finished
                    if not item.future.done():
                        item.future.set_result(result)
        except UnrecoverableError as exc:
            broken = True
            log.error("model %s: %s is broken: %s; restarting it", self.model_name, worker.slot.description, exc)
            self._fail(live, exc)
        except ServiceError as exc:
            self._fail(live, exc)
        except Exception as exc:
            log.exception("model %s: batch of %d failed on %s", self.model_name, len(live), worker.slot.description)
            self._fail(live, InferenceFailed(f"model '{self.model_name}' failed on this batch: {type(exc).__name__}"))
        finally:
            if broken:
                await self._restart(worker)
            else:
                self.release(worker)

    @staticmethod
    def _fail(items: list[WorkItem], error: Exception) -> None:
        for item in items:
            if not item.future.done():
                item.future.set_exception(error)

    async def _restart(self, worker: SlotWorker) -> None:
        loop = asyncio.get_running_loop()
        self._restarting += 1
        try:
            while True:
                try:
                    await loop.run_in_executor(worker.thread, worker.slot.close)
                except Exception:
                    log.warning("model %s: closing the broken slot failed", self.model_name, exc_info=True)
                try:
                    worker.slot = await loop.run_in_executor(worker.thread, self._factory, worker.index)
                    break
                except Exception:
                    log.exception("model %s: slot %d failed to restart; retrying in 1 s", self.model_name, worker.index)
                    await asyncio.sleep(1.0)
        finally:
            self._restarting -= 1
        log.info("model %s: slot %d restarted", self.model_name, worker.index)
        self.release(worker)

    async def close(self) -> None:
        """Wait for running batches, then release every slot and thread."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in self._workers:
            worker.slot.close()
            worker.thread.shutdown(wait=False)
        self._workers.clear()

"""Test-only fault injection: a slot wrapper that fails on magic inputs.

Switched on only by `FILTERS_FAULT_INJECTION=1` (never in production). Any runtime's slots are
wrapped; an item whose pixels are all one magic colour makes the batch that holds it fail:

- `FAIL_BATCH_RGB`: an ordinary exception in the runtime. Only that batch's requests fail (500
  `inference_failed`); the slot keeps serving.
- `BREAK_SLOT_RGB`: `UnrecoverableError`, as a CUDA error or a lost device would. That batch's
  requests fail (503 `worker_failed`), the slot is closed and re-created, and readiness answers
  503 while it is.

A solid image of a magic colour gives magic tiles: that is how the e2e tests and benchmarks aim.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from service.errors import UnrecoverableError
from service.runtimes.base import ExecutionSlot

log = logging.getLogger(__name__)

FAIL_BATCH_RGB = (250, 0, 1)
BREAK_SLOT_RGB = (250, 0, 2)


class InjectedFault(RuntimeError):
    """The ordinary runtime failure that `FAIL_BATCH_RGB` provokes."""


def _is_uniform(item: np.ndarray, rgb: tuple[int, int, int]) -> bool:
    return bool(item.ndim == 3 and item.shape[-1] == 3 and np.all(item == np.asarray(rgb, item.dtype)))


class FaultInjectingSlot:
    """Runs `inner`, except on batches holding a magic item (see the module docstring)."""

    def __init__(self, inner: ExecutionSlot) -> None:
        self._inner = inner

    @property
    def description(self) -> str:
        return f"{self._inner.description} [fault injection]"

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        for item in inputs[0]:
            if _is_uniform(item, FAIL_BATCH_RGB):
                raise InjectedFault("injected fault: the runtime failed on this batch")
            if _is_uniform(item, BREAK_SLOT_RGB):
                raise UnrecoverableError("injected fault: simulated CUDA error (an illegal memory access)")
        return self._inner.infer(inputs)

    def close(self) -> None:
        self._inner.close()


def with_fault_injection(slot: ExecutionSlot, enabled: bool) -> ExecutionSlot:
    """`slot` itself, or wrapped for fault injection when `enabled` (test only)."""
    if not enabled:
        return slot
    log.warning("FAULT INJECTION IS ON for %s: test use only", slot.description)
    return FaultInjectingSlot(slot)

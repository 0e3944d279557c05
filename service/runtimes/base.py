"""The runtime contract every engine implements (ONNX Runtime, PyTorch-CUDA, TensorRT).

A `Runtime` knows whether it can serve a model on this machine and makes `ExecutionSlot`s. A slot
owns everything one inference needs: the session or execution context, its stream, its I/O
buffers. The worker pool gives each slot its own thread, so a slot is never entered by two threads
at once and needs no locking of its own.

Image tensors cross the contract as uint8 NHWC RGB batches; converting them to what the model
wants (layout, dtype, value range, channel order) is the slot's job, so GPU runtimes can move
uint8 over the bus and normalise on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from service.repository.config import LoadedConfig, RuntimeName


@dataclass(frozen=True)
class SlotPlacement:
    """Where a slot runs and how much of the machine it may use."""

    device: str
    index: int
    cpu_threads: int


@runtime_checkable
class ExecutionSlot(Protocol):
    """One session/context + stream + buffers; used by one thread at a time."""

    @property
    def description(self) -> str:
        """Human-readable identity, e.g. `onnxruntime cpu slot 0`."""
        ...

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one batch. `inputs`: one uint8 NHWC RGB array per model input, equal batch sizes.

        Returns one uint8 NHWC RGB array per model output with the same batch size.
        Raises `UnrecoverableError` when the slot itself is broken, any other exception for a
        failure of this batch only.
        """
        ...

    def close(self) -> None:
        """Release the session, stream and buffers."""
        ...


class Runtime(Protocol):
    """A family of engines (one per runtime name)."""

    name: RuntimeName

    def unavailable_reason(self, model: LoadedConfig) -> str | None:
        """Why this runtime cannot serve `model` here, or None if it can."""
        ...

    def devices(self) -> list[str]:
        """Devices this runtime places slots on (`cpu`, `cuda:0`, ...)."""
        ...

    def create_slot(self, model: LoadedConfig, placement: SlotPlacement) -> ExecutionSlot:
        """Load `model` into a new slot at `placement`."""
        ...

"""The runtime contract every engine implements (ONNX Runtime, PyTorch-CUDA, TensorRT).

A `Runtime` knows whether it can serve a model on this machine and makes `ExecutionSlot`s. A slot
owns everything one inference needs: the session or execution context, its stream, its I/O
buffers. The worker pool gives each slot its own thread, so a slot is never entered by two threads
at once and needs no locking of its own.

Image tensors cross the contract as uint8 NHWC RGB batches; converting them to what the model
wants (layout, dtype, value range, channel order) is the slot's job, so GPU runtimes can move
uint8 over the bus and normalise on the device. Inputs and outputs declared `kind = "tensor"`
(detection heads, an interpolation time step) are plain arrays with the batch axis first: an
input is only cast to its declared dtype, an output is returned as the model produced it (as a
numpy array on the host).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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
        """Run one batch. `inputs`: one array per model input, equal batch sizes: uint8 NHWC RGB for
        `kind = "image"` inputs, the plain array (batch axis first) for `kind = "tensor"` inputs.

        Returns one array per model output with the same batch size: uint8 NHWC RGB for image
        outputs, the model's own array (e.g. float32 [N, anchors, 85]) for tensor outputs.
        Raises `UnrecoverableError` when the slot itself is broken, any other exception for a
        failure of this batch only.
        """
        ...

    def close(self) -> None:
        """Release the session, stream and buffers."""
        ...


@runtime_checkable
class DeviceOutputSlot(ExecutionSlot, Protocol):
    """Optional capability of GPU slots: outputs left on the device, for encoders that run there.

    The worker pool calls it for batches whose items asked for it (`WorkItem.on_device`); any
    other slot answers those with `infer`, so callers must accept numpy arrays as well.
    """

    def infer_on_device(self, inputs: Sequence[np.ndarray]) -> list[Any]:
        """`infer`, except that the outputs are tensors on the slot's device (torch, uint8 NHWC RGB
        for image outputs), finished (the slot's stream is synchronised: any stream may read them)
        and owned by the caller (never overwritten by a later batch)."""
        ...


@runtime_checkable
class PinnedInputSlot(ExecutionSlot, Protocol):
    """Optional capability of GPU slots: the worker pool stacks a batch into the slot's own
    page-locked staging memory, so the upload needs no second host copy."""

    def input_buffer(self, index: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """A host array of `shape`/`dtype` in the staging memory of input `index`; valid until the
        next call for that input (the same thread calls `infer` with it in between)."""
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

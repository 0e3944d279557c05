"""One execution slot of the TensorRT runtime: an execution context, a CUDA stream, pinned and device buffers.

Name-based tensor API only (TensorRT 10/11): `set_optimization_profile_async`, `set_input_shape`,
`get_tensor_shape`, `set_tensor_address`, `execute_async_v3`. The engine, shared by every slot
of its device, takes and returns uint8 NHWC images (the builder folded the conversion into the
graph), so `infer` is: pick the smallest profile that holds the tile, pad tiles smaller than the
profile's minimum side, copy into pinned memory, upload, execute, download, synchronise the
slot's stream, crop the padding off.

A context is never used from two threads: the worker pool gives each slot its own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InferenceFailed, UnrecoverableError
from service.repository.config import LoadedConfig
from service.runtimes.base import SlotPlacement
from service.runtimes.tensorrt.cuda import Buffer, Stream, set_device


@dataclass(frozen=True)
class Profile:
    """The range of tiles one optimization profile takes."""

    index: int
    min_batch: int
    max_batch: int
    min_side: int
    max_height: int
    max_width: int


def choose_profile(profiles: Sequence[Profile], batch: int, height: int, width: int) -> Profile | None:
    """The smallest profile holding `batch` tiles of `height` x `width` (smaller tiles are padded up)."""
    fits = [
        p for p in profiles if p.min_batch <= batch <= p.max_batch and height <= p.max_height and width <= p.max_width
    ]
    return min(fits, key=lambda p: (p.max_height * p.max_width, p.index), default=None)


def pad_to(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    """NHWC `batch` padded at the bottom and right, replicating the edge, to `height` x `width`."""
    extra_h, extra_w = height - batch.shape[1], width - batch.shape[2]
    if extra_h == 0 and extra_w == 0:
        return batch
    return np.pad(batch, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)), mode="edge")


def crop_output(output: np.ndarray, height: int, width: int, padded_h: int, padded_w: int) -> np.ndarray:
    """The part of an NHWC image output that belongs to the unpadded `height` x `width` input."""
    if (height, width) == (padded_h, padded_w):
        return output
    return output[:, : output.shape[1] * height // padded_h, : output.shape[2] * width // padded_w]


class TensorRTSlot:
    """An `IExecutionContext` of a shared engine, with its stream and buffers; one thread at a time."""

    def __init__(
        self, trt: Any, engine: Any, model: LoadedConfig, placement: SlotPlacement, release: Callable[[], None]
    ) -> None:
        self._device = int(placement.device.partition(":")[2] or 0)
        set_device(self._device)
        self._engine, self._release = engine, release
        self._context = engine.create_execution_context()
        if self._context is None:
            raise UnrecoverableError(f"TensorRT could not create an execution context for model '{model.config.name}'")
        self._stream = Stream()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self._inputs = [s.name for s in model.config.inputs]
        self._outputs = [s.name for s in model.config.outputs]
        if sorted(self._inputs) != sorted(n for n in names if is_input[n]) or sorted(self._outputs) != sorted(
            n for n in names if not is_input[n]
        ):
            raise UnrecoverableError(f"the TensorRT engine's tensors {names} are not those model.toml declares")
        self._images = {s.name for s in [*model.config.inputs, *model.config.outputs] if s.kind == "image"}
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._shape_input = next((n for n in self._inputs if n in self._images), self._inputs[0])
        self._profiles = [self._profile(k) for k in range(engine.num_optimization_profiles)]
        self._active = -1
        self._buffers = self._allocate()
        self._description = f"tensorrt {placement.device} slot {placement.index}"

    @property
    def description(self) -> str:
        return self._description

    def _profile(self, index: int) -> Profile:
        low, _, high = (tuple(d) for d in self._engine.get_tensor_profile_shape(self._shape_input, index))
        if self._shape_input not in self._images:
            return Profile(index, low[0], high[0], 1, 1 << 30, 1 << 30)
        return Profile(index, low[0], high[0], max(low[1], low[2]), high[1], high[2])

    def _select(self, index: int) -> None:
        if not self._context.set_optimization_profile_async(index, int(self._stream.handle)):
            raise UnrecoverableError(f"TensorRT refused optimization profile {index}")
        self._active = index

    def _allocate(self) -> dict[str, Buffer]:
        """Buffers for the largest shapes of every profile (outputs: as TensorRT infers them)."""
        sizes = dict.fromkeys([*self._inputs, *self._outputs], 1)
        for profile in self._profiles:
            self._select(profile.index)
            for name in self._inputs:
                largest = tuple(self._engine.get_tensor_profile_shape(name, profile.index)[2])
                self._set_shape(name, largest)
                sizes[name] = max(sizes[name], int(np.prod(largest)) * self._dtypes[name].itemsize)
            for name in self._outputs:
                shape = tuple(self._context.get_tensor_shape(name))
                sizes[name] = max(sizes[name], int(np.prod(shape)) * self._dtypes[name].itemsize)
        self._stream.synchronize()
        return {name: Buffer(nbytes) for name, nbytes in sizes.items()}

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if not self._context.set_input_shape(name, shape):
            raise InferenceFailed(f"TensorRT refused shape {shape} for input '{name}'")

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        set_device(self._device)  # CUDA's current device is per thread
        shaped = inputs[self._inputs.index(self._shape_input)]
        n, height, width = shaped.shape[:3] if self._shape_input in self._images else (shaped.shape[0], 1, 1)
        profile = choose_profile(self._profiles, n, height, width)
        if profile is None:
            raise InferenceFailed(
                f"a batch of {n} tiles of {height}x{width} fits no TensorRT profile of this engine "
                f"({[(p.max_batch, p.max_height, p.max_width) for p in self._profiles]}); build it for larger shapes"
            )
        padded_h, padded_w = max(height, profile.min_side), max(width, profile.min_side)
        if profile.index != self._active:
            self._select(profile.index)
        for name, array in zip(self._inputs, inputs, strict=True):
            if name in self._images:
                array = pad_to(array, padded_h, padded_w)
            self._set_shape(name, array.shape)
            view = self._buffers[name].host_view(array.shape, self._dtypes[name])
            np.copyto(view, array, casting="same_kind")
            self._buffers[name].upload(view.nbytes, self._stream)
        shapes = {name: tuple(self._context.get_tensor_shape(name)) for name in self._outputs}
        for name, buffer in self._buffers.items():
            self._context.set_tensor_address(name, buffer.device_ptr)
        if not self._context.execute_async_v3(int(self._stream.handle)):
            raise UnrecoverableError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        views = {name: self._buffers[name].host_view(shape, self._dtypes[name]) for name, shape in shapes.items()}
        for name, view in views.items():
            self._buffers[name].download(view.nbytes, self._stream)
        self._stream.synchronize()
        results = []
        for name, view in views.items():
            out = crop_output(view, height, width, padded_h, padded_w) if name in self._images else view
            results.append(out.copy())  # the pinned buffer is reused by the next batch
        return results

    def close(self) -> None:
        try:
            self._stream.synchronize()
            for buffer in self._buffers.values():
                buffer.free()
            self._stream.destroy()
        finally:
            del self._context
            self._release()

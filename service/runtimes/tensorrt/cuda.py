"""CUDA memory, streams and devices through `cuda.bindings.runtime` (cuda-python), every call checked.

cuda-python returns `(error, *values)` from every call; `check` raises `UnrecoverableError` on
any error other than `cudaSuccess`, so a CUDA failure marks the slot broken and the pool
restarts it.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from service.errors import UnrecoverableError


def cudart() -> ModuleType:
    """The CUDA runtime bindings (`cuda.bindings.runtime`; `cuda.cudart` on cuda-python < 12.6)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    module: ModuleType = runtime
    return module


def check(result: tuple[Any, ...], what: str) -> Any:
    """The value(s) of a cuda-python call, or `UnrecoverableError` naming the call and the error."""
    rt = cudart()
    error, values = result[0], result[1:]
    if error != rt.cudaError_t.cudaSuccess:
        _, name = rt.cudaGetErrorName(error)
        text = name.decode() if isinstance(name, bytes) else str(name)
        raise UnrecoverableError(f"CUDA {what} failed: {text}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is specific to."""

    index: int
    name: str
    compute_capability: str


def device_count() -> int:
    count: int = check(cudart().cudaGetDeviceCount(), "cudaGetDeviceCount")
    return count


def device_info(index: int) -> DeviceInfo:
    props = check(cudart().cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return DeviceInfo(index, name.rstrip("\x00").strip(), f"{props.major}.{props.minor}")


def set_device(index: int) -> None:
    """Make `index` the calling thread's current device (CUDA's current device is per thread)."""
    check(cudart().cudaSetDevice(index), "cudaSetDevice")


class Stream:
    """A non-blocking CUDA stream (it never waits for the legacy default stream)."""

    def __init__(self) -> None:
        rt = cudart()
        self.handle = check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def destroy(self) -> None:
        check(cudart().cudaStreamDestroy(self.handle), "cudaStreamDestroy")


class Buffer:
    """`nbytes` of pinned host memory (seen as a numpy byte array) and as many on the device."""

    def __init__(self, nbytes: int) -> None:
        rt = cudart()
        self.nbytes = nbytes
        self.host_ptr: int = check(rt.cudaMallocHost(nbytes), "cudaMallocHost")
        self.device_ptr: int = check(rt.cudaMalloc(nbytes), "cudaMalloc")
        self.host = np.ctypeslib.as_array(ctypes.cast(self.host_ptr, ctypes.POINTER(ctypes.c_uint8)), (nbytes,))

    def host_view(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """The first bytes of the pinned memory as an array of `shape` and `dtype`."""
        count = int(np.prod(shape)) * dtype.itemsize
        if count > self.nbytes:
            raise ValueError(f"{shape} {dtype} needs {count} bytes; the buffer has {self.nbytes}")
        return self.host[:count].view(dtype).reshape(shape)

    def upload(self, nbytes: int, stream: Stream) -> None:
        rt = cudart()
        kind = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(rt.cudaMemcpyAsync(self.device_ptr, self.host_ptr, nbytes, kind, stream.handle), "cudaMemcpyAsync H2D")

    def download(self, nbytes: int, stream: Stream) -> None:
        rt = cudart()
        kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(rt.cudaMemcpyAsync(self.host_ptr, self.device_ptr, nbytes, kind, stream.handle), "cudaMemcpyAsync D2H")

    def free(self) -> None:
        rt = cudart()
        check(rt.cudaFree(self.device_ptr), "cudaFree")
        check(rt.cudaFreeHost(self.host_ptr), "cudaFreeHost")

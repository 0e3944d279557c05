"""Fakes of `tensorrt` and cuda-python's `cuda.bindings.runtime` for testing our control flow.

Nothing here is TensorRT: a "plan" is the ONNX graph the builder handed over plus its profiles,
and an execution context runs that graph with onnxruntime on the CPU. "Device" memory is host
memory and `cudaMemcpyAsync` is a `memmove`. What the fakes check is the contract our code must
keep with the real libraries: the name-based tensor API, shapes inside the selected profile,
addresses set before `execute_async_v3`, every CUDA call's error code.
"""

from __future__ import annotations

import ctypes
import enum
import itertools
import json
import types
from typing import Any

import numpy as np
import onnxruntime as ort

MAGIC = b"FAKEPLAN"


class DataType(enum.Enum):
    FLOAT = np.float32
    HALF = np.float16
    UINT8 = np.uint8


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


_ONNX_TYPES = {"tensor(float)": DataType.FLOAT, "tensor(float16)": DataType.HALF, "tensor(uint8)": DataType.UINT8}


def make_cudart() -> types.ModuleType:
    """A fake `cuda.bindings.runtime`: host memory, synchronous copies, injectable errors (`fail`)."""
    rt = types.ModuleType("cuda.bindings.runtime")

    class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's names
        cudaSuccess = 0
        cudaErrorMemoryAllocation = 2
        cudaErrorIllegalAddress = 700

    class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    memory: dict[int, ctypes.Array[ctypes.c_char]] = {}
    handles = itertools.count(1)
    fail: dict[str, cudaError_t] = {}
    ok = cudaError_t.cudaSuccess

    def call(name: str, *values: Any) -> tuple[Any, ...]:
        return (fail.get(name, ok), *values)

    def malloc(nbytes: int) -> int:
        block = ctypes.create_string_buffer(nbytes)
        memory[ctypes.addressof(block)] = block
        return ctypes.addressof(block)

    def free(ptr: int) -> tuple[Any, ...]:
        assert memory.pop(ptr, None) is not None, "freed twice, or never allocated"
        return call("cudaFree")

    def memcpy(dst: int, src: int, count: int, kind: cudaMemcpyKind, stream: int) -> tuple[Any, ...]:
        assert dst in memory and src in memory, "copies run between buffers the slot allocated"
        ctypes.memmove(dst, src, count)
        return call("cudaMemcpyAsync")

    rt.__dict__.update(
        cudaError_t=cudaError_t,
        cudaMemcpyKind=cudaMemcpyKind,
        cudaStreamNonBlocking=1,
        memory=memory,
        fail=fail,
        cudaGetErrorName=lambda err: (ok, cudaError_t(err).name.encode()),
        cudaGetDeviceCount=lambda: call("cudaGetDeviceCount", 1),
        cudaSetDevice=lambda index: call("cudaSetDevice"),
        cudaGetDeviceProperties=lambda index: call(
            "cudaGetDeviceProperties", types.SimpleNamespace(name=b"Fake GPU 141GB", major=9, minor=0)
        ),
        cudaStreamCreateWithFlags=lambda flags: call("cudaStreamCreateWithFlags", next(handles)),
        cudaStreamSynchronize=lambda stream: call("cudaStreamSynchronize"),
        cudaStreamDestroy=lambda stream: call("cudaStreamDestroy"),
        cudaMallocHost=lambda nbytes: call("cudaMallocHost", malloc(nbytes)),
        cudaMalloc=lambda nbytes: call("cudaMalloc", malloc(nbytes)),
        cudaFree=free,
        cudaFreeHost=free,
        cudaMemcpyAsync=memcpy,
    )
    return rt


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, list[list[int]]] = {}

    def set_shape(self, name: str, low: Any, best: Any, high: Any) -> None:
        self.shapes[name] = [list(low), list(best), list(high)]


class _Config:
    def __init__(self) -> None:
        self.profiles: list[_Profile] = []
        self.flags: set[str] = set()
        self.workspace = 0
        self.cache: bytes | None = None

    def set_memory_pool_limit(self, pool: str, nbytes: int) -> None:
        self.workspace = nbytes

    def set_flag(self, flag: str) -> None:
        self.flags.add(flag)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> types.SimpleNamespace:
        return types.SimpleNamespace(data=data, serialize=lambda: b"timing:" + data[:32])

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        self.cache = cache.data
        return True


class _Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.onnx = b""
        self.inputs: list[types.SimpleNamespace] = []

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, index: int) -> types.SimpleNamespace:
        return self.inputs[index]


class _Parser:
    def __init__(self, network: _Network, logger: Any) -> None:
        self.network = network
        self.num_errors = 0

    def parse(self, data: bytes) -> bool:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        self.network.onnx = data
        for i in session.get_inputs():
            shape = tuple(d if isinstance(d, int) else -1 for d in i.shape)
            self.network.inputs.append(types.SimpleNamespace(name=i.name, shape=shape, dtype=_ONNX_TYPES[i.type]))
        return True


def make_tensorrt(version: str = "10.9.0") -> types.ModuleType:
    """A fake `tensorrt`: `builds` counts plans built, `built` holds the last builder config and network."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    state: dict[str, Any] = {"builds": 0}

    class Builder:
        def __init__(self, logger: Any) -> None:
            pass

        def create_network(self, flags: int) -> _Network:
            return _Network(flags)

        def create_builder_config(self) -> _Config:
            return _Config()

        def create_optimization_profile(self) -> _Profile:
            return _Profile()

        def build_serialized_network(self, network: _Network, config: _Config) -> bytes:
            state["builds"] += 1
            state["built"] = (config, network)
            header = json.dumps({"profiles": [p.shapes for p in config.profiles]}).encode()
            return MAGIC + len(header).to_bytes(4, "little") + header + network.onnx

    class Runtime:
        def __init__(self, logger: Any) -> None:
            pass

        def deserialize_cuda_engine(self, plan: bytes) -> FakeEngine | None:
            return FakeEngine(plan) if plan.startswith(MAGIC) else None  # the real one logs and returns None

    trt.__dict__.update(
        state=state,
        Builder=Builder,
        Runtime=Runtime,
        OnnxParser=_Parser,
        Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, severity=2: None}),
        DataType=DataType,
        TensorIOMode=TensorIOMode,
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"),
        BuilderFlag=types.SimpleNamespace(FP16="fp16"),
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=5),
        nptype=lambda dtype: dtype.value,
    )
    return trt


class FakeEngine:
    """A deserialized fake plan: its ONNX graph (run by onnxruntime) and its profiles."""

    def __init__(self, plan: bytes) -> None:
        size = int.from_bytes(plan[len(MAGIC) : len(MAGIC) + 4], "little")
        header = json.loads(plan[len(MAGIC) + 4 : len(MAGIC) + 4 + size])
        self.profiles: list[dict[str, list[list[int]]]] = header["profiles"]
        self.session = ort.InferenceSession(plan[len(MAGIC) + 4 + size :], providers=["CPUExecutionProvider"])
        self.io = [*self.session.get_inputs(), *self.session.get_outputs()]
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.contexts = 0

    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.profiles)

    def get_tensor_name(self, index: int) -> str:
        return str(self.io[index].name)

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if name in self.input_names else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return next(_ONNX_TYPES[t.type] for t in self.io if t.name == name)

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[list[int]]:
        return self.profiles[profile][name]

    def create_execution_context(self) -> FakeContext:
        self.contexts += 1
        return FakeContext(self)


class FakeContext:
    """Runs the plan's graph with onnxruntime on the memory at the addresses it was given."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.profile = 0
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.executions = 0

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        assert isinstance(stream, int)
        self.profile, self.shapes, self.addresses = index, {}, {}  # switching invalidates shapes and addresses
        return 0 <= index < self.engine.num_optimization_profiles

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        low, _, high = self.engine.get_tensor_profile_shape(name, self.profile)
        if not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high, strict=True)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.engine.session.get_outputs()
        return dict(zip([o.name for o in outputs], self.engine.session.run(None, feeds), strict=True))

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self.engine.input_names:
            return self.shapes[name]
        zeros = {n: np.zeros(s, self.engine.get_tensor_dtype(n).value) for n, s in self.shapes.items()}
        return tuple(self._run(zeros)[name].shape)

    def set_tensor_address(self, name: str, address: int) -> None:
        self.addresses[name] = address

    def execute_async_v3(self, stream: int) -> bool:
        assert isinstance(stream, int)
        assert set(self.shapes) == self.engine.input_names, "every input shape is set after the profile switch"
        assert len(self.addresses) == self.engine.num_io_tensors, "every tensor has an address"
        feeds = {name: _array(self.addresses[name], shape, self.engine.get_tensor_dtype(name).value)
                 for name, shape in self.shapes.items()}
        for name, out in self._run(feeds).items():
            _array(self.addresses[name], out.shape, out.dtype)[...] = out
        self.executions += 1
        return True


def _array(address: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    count = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.ctypeslib.as_array(ctypes.cast(address, ctypes.POINTER(ctypes.c_uint8)), (count,))
    return raw.view(dtype).reshape(shape)

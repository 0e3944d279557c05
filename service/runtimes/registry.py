"""Picks the runtime for each model from the configured preference, falling back with a reason."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.errors import ConfigError
from service.repository.config import LoadedConfig, RuntimeName
from service.runtimes.base import Runtime
from service.runtimes.onnxruntime_cpu import OnnxRuntimeCpu
from service.runtimes.tensorrt.runtime import TensorRTRuntime
from service.runtimes.torch_cuda.runtime import TorchCudaRuntime

log = logging.getLogger(__name__)


def _onnxruntime() -> Runtime:
    return OnnxRuntimeCpu()


def _tensorrt() -> Runtime | None:
    from service.settings import Settings  # the engine cache folder is a server setting (FILTERS_ENGINE_CACHE_DIR)

    return TensorRTRuntime(Settings().engine_cache_dir)


def _torch() -> Runtime | None:
    return TorchCudaRuntime()


def _classical() -> Runtime:
    from service.runtimes.classical_interpolation import ClassicalInterpolation

    return ClassicalInterpolation()


FACTORIES: dict[RuntimeName, Callable[[], Runtime | None]] = {
    "tensorrt": _tensorrt,
    "torch": _torch,
    "onnxruntime": _onnxruntime,
    "classical": _classical,
}


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime a model runs on and why the better ones were skipped."""

    runtime: Runtime
    skipped: dict[str, str]


def choose_runtime(model: LoadedConfig, preference: Sequence[RuntimeName]) -> RuntimeChoice:
    """First runtime in the model's (else the server's) preference that can serve it."""
    order = model.config.runtimes or list(preference)
    skipped: dict[str, str] = {}
    for name in order:
        runtime = FACTORIES[name]()
        reason = "not built into this server yet" if runtime is None else runtime.unavailable_reason(model)
        if runtime is not None and reason is None:
            for other, why in skipped.items():
                log.info("model %s: runtime %s skipped: %s", model.config.name, other, why)
            return RuntimeChoice(runtime=runtime, skipped=skipped)
        skipped[name] = reason or "unavailable"
    raise ConfigError(f"model '{model.config.name}' ({model.folder}): no runtime can serve it: {skipped}")

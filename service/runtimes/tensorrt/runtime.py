"""The TensorRT runtime: one engine per device (deserialized once, shared), one context per slot.

Not executed in this project's environment: TensorRT is not installable here (see
docs/runtimes.md). Its control flow is unit-tested against fakes of `tensorrt` and cuda-python.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.errors import UnrecoverableError
from service.repository.config import LoadedConfig, RuntimeName
from service.runtimes.base import ExecutionSlot, SlotPlacement

log = logging.getLogger(__name__)


@dataclass
class SharedEngine:
    """A deserialized engine of one device, with the `trt.Runtime` that must outlive it."""

    runtime: Any
    engine: Any
    slots: int = 0


class TensorRTRuntime:
    """Factory of TensorRT slots on `cuda:0 .. cuda:N-1` (one runtime object per served model)."""

    name: RuntimeName = "tensorrt"

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._cache_dir = cache_dir  # None: .engines/ in each model's folder
        self._engines: dict[int, SharedEngine] = {}
        self._lock = threading.Lock()  # slots are created and restarted on their own threads

    def unavailable_reason(self, model: LoadedConfig) -> str | None:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return "the tensorrt package is not installed"
        except Exception as exc:  # a broken install: libnvinfer missing, say
            return f"the tensorrt package does not load: {exc}"
        from service.runtimes.tensorrt.cuda import cudart, device_count

        try:
            cudart()
        except ImportError:
            return "the cuda-python package (cuda.bindings) is not installed"
        try:
            if device_count() == 0:
                return "no CUDA device"
        except UnrecoverableError as exc:
            return f"no CUDA device ({exc.message})"
        if model.file("onnx") is None and model.file("tensorrt") is None:
            return "the model names neither an ONNX file nor a TensorRT plan"
        return None

    def devices(self) -> list[str]:
        from service.runtimes.tensorrt.cuda import device_count

        return [f"cuda:{i}" for i in range(device_count())]

    def create_slot(self, model: LoadedConfig, placement: SlotPlacement) -> ExecutionSlot:
        import tensorrt as trt

        from service.runtimes.tensorrt.slot import TensorRTSlot

        index = int(placement.device.partition(":")[2] or 0)
        with self._lock:
            shared = self._engines.get(index) or self._load(trt, model, index)
            self._engines[index] = shared
            shared.slots += 1
            try:
                return TensorRTSlot(trt, shared.engine, model, placement, lambda: self._release(index))
            except BaseException:
                shared.slots -= 1
                raise

    def _release(self, index: int) -> None:
        with self._lock:
            shared = self._engines.get(index)
            if shared is not None:
                shared.slots -= 1
                if shared.slots <= 0:
                    del self._engines[index]

    def _load(self, trt: Any, model: LoadedConfig, index: int) -> SharedEngine:
        """Deserialize the model's plan for device `index`; a plan that does not load is rebuilt."""
        from service.runtimes.tensorrt.builder import ensure_plan
        from service.runtimes.tensorrt.cuda import device_info, set_device

        set_device(index)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        prebuilt = model.file("tensorrt")
        if prebuilt is not None and prebuilt.is_file():
            engine = runtime.deserialize_cuda_engine(prebuilt.read_bytes())
            if engine is not None:
                return SharedEngine(runtime, engine)
            log.warning("model %s: the prebuilt plan %s does not load here; building one", model.config.name, prebuilt)
        if model.file("onnx") is None:
            raise UnrecoverableError(f"model '{model.config.name}': its TensorRT plan does not load; no ONNX to build")
        device = device_info(index)
        for rebuild in (False, True):  # a cached plan that does not deserialize (corrupt, stale) is rebuilt once
            plan, paths = ensure_plan(trt, model, device, cache_dir=self._cache_dir, rebuild=rebuild)
            engine = runtime.deserialize_cuda_engine(plan)
            if engine is not None:
                return SharedEngine(runtime, engine)
            log.warning("model %s: cached plan %s does not deserialize; rebuilding", model.config.name, paths.plan.name)
        raise UnrecoverableError(f"model '{model.config.name}': TensorRT cannot deserialize a freshly built plan")

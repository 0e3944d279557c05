"""ONNX Runtime on the CPU: the runtime that works everywhere."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.errors import UnrecoverableError
from service.repository.config import LoadedConfig, RuntimeName
from service.runtimes.base import ExecutionSlot, SlotPlacement
from service.runtimes.tensors import pixels_to_tensor, tensor_to_pixels


class OnnxRuntimeSlot:
    """One `InferenceSession` with its own intra-op thread pool."""

    def __init__(self, model: LoadedConfig, placement: SlotPlacement) -> None:
        import onnxruntime as ort

        path = model.file("onnx")
        assert path is not None
        options = ort.SessionOptions()
        options.intra_op_num_threads = placement.cpu_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise UnrecoverableError(f"cannot load {path.name} for model '{model.config.name}': {exc}") from exc
        self._inputs = model.config.inputs
        self._outputs = model.config.outputs
        self._output_names = [o.name for o in self._outputs]
        self._description = f"onnxruntime cpu slot {placement.index} ({placement.cpu_threads} threads)"

    @property
    def description(self) -> str:
        return self._description

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        feeds = {spec.name: pixels_to_tensor(batch, spec) for spec, batch in zip(self._inputs, inputs, strict=True)}
        results = self._session.run(self._output_names, feeds)
        return [tensor_to_pixels(np.asarray(r), spec) for spec, r in zip(self._outputs, results, strict=True)]

    def close(self) -> None:
        del self._session


class OnnxRuntimeCpu:
    """Factory of ONNX Runtime CPU slots."""

    name: RuntimeName = "onnxruntime"

    def unavailable_reason(self, model: LoadedConfig) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "the onnxruntime package is not installed"
        if model.file("onnx") is None:
            return "the model names no ONNX file"
        return None

    def devices(self) -> list[str]:
        return ["cpu"]

    def create_slot(self, model: LoadedConfig, placement: SlotPlacement) -> ExecutionSlot:
        return OnnxRuntimeSlot(model, placement)

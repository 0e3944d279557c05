"""The torch runtime: PyTorch on every visible CUDA device, FP16 by default."""

from __future__ import annotations

from service.repository.config import LoadedConfig, RuntimeName
from service.runtimes.base import ExecutionSlot, SlotPlacement
from service.runtimes.torch_cuda.loading import source_problem


class TorchCudaRuntime:
    """Factory of torch slots on `cuda:0 .. cuda:N-1`; unavailable without a CUDA device."""

    name: RuntimeName = "torch"

    def unavailable_reason(self, model: LoadedConfig) -> str | None:
        try:
            import torch
        except ImportError:
            return "the torch package is not installed"
        if not torch.cuda.is_available():
            return "no CUDA device"
        return source_problem(model)

    def devices(self) -> list[str]:
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]

    def create_slot(self, model: LoadedConfig, placement: SlotPlacement) -> ExecutionSlot:
        import torch

        from service.runtimes.torch_cuda.loading import load_module
        from service.runtimes.torch_cuda.slot import TorchSlot

        torch.backends.cudnn.benchmark = True  # fixed tile shapes: let cuDNN pick its fastest kernels once
        return TorchSlot(load_module(model), model, placement)

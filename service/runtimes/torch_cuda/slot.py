"""One execution slot of the torch runtime: a model copy, its own CUDA stream, pinned staging memory.

`infer` moves only uint8 over the bus, all on the slot's non-default stream: the batch is copied
into pinned staging memory, uploaded with a non-blocking copy, normalised on the GPU, run through
the model (FP16, channels_last), turned back into uint8 NHWC on the GPU, downloaded with a
non-blocking copy into pinned memory, and the slot's stream is synchronised. Two or more slots on
one device therefore overlap: one uploads while another computes and a third downloads.

Prepared shapes (`[gpu]` in model.toml): with `compile` and/or `cuda_graphs`, every prepared tile
shape is compiled (`dynamic=False`) and/or captured at load for every prepared batch size, and a
batch of that shape is padded up to the next prepared batch size. Any other shape (an image
smaller than a tile, a per-request `tile`) runs eagerly: nothing is compiled on the request path.

Concurrency: the worker pool calls a slot from one thread only; a slot shares nothing mutable with
other slots (each has its own module copy, stream, staging buffers and graphs).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from service.errors import UnrecoverableError
from service.repository.config import LoadedConfig
from service.repository.gpu import batch_chunks, prepared_batch_sizes, prepared_shapes
from service.runtimes.base import SlotPlacement
from service.runtimes.torch_cuda.pixels import PixelFormat, model_to_pixels, pixels_to_model
from service.runtimes.torch_cuda.waiting import wait_for

log = logging.getLogger(__name__)
Forward = Callable[..., tuple[torch.Tensor, ...]]
ShapeKey = tuple[int, int, int]  # batch, height, width
RECOMPILE_LIMIT = 1024  # compiled variants per code object: shapes x batch sizes x slots of the process


@dataclass
class CapturedGraph:
    """A CUDA graph of the whole uint8 -> uint8 forward pass and its static buffers."""

    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]
    outputs: tuple[torch.Tensor, ...]


class TorchSlot:
    """A torch module on one device with its stream and buffers; used by one thread at a time."""

    def __init__(self, module: nn.Module, model: LoadedConfig, placement: SlotPlacement) -> None:
        config, options = model.config, model.config.gpu
        self._device = torch.device(placement.device)
        self._cuda = self._device.type == "cuda"
        fp16 = self._cuda and config.instances.precision == "fp16"
        compute = torch.float16 if fp16 else torch.float32
        self._in_formats = tuple(PixelFormat.of(spec, compute) for spec in config.inputs)
        self._out_formats = tuple(PixelFormat.of(spec, compute) for spec in config.outputs)
        module = module.to(self._device)
        if fp16:
            module = module.half()
        if self._cuda:
            module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._module = module
        self._stream = torch.cuda.Stream(self._device) if self._cuda else None  # type: ignore[no-untyped-call]
        images_only = all(f.image for f in self._in_formats)  # only image inputs have known shapes
        self._shapes = set(prepared_shapes(options, config.tiling.tile_size)) if images_only else set()
        self._batches = prepared_batch_sizes(options, config.batching.max_batch_size)
        self._compiled = _compile(self._forward, options.compile_mode) if options.compile and images_only else None
        self._use_graphs = options.cuda_graphs and self._cuda and images_only
        self._graphs: dict[ShapeKey, CapturedGraph] = {}
        self._staging: dict[int, torch.Tensor] = {}
        self._description = f"torch {placement.device} slot {placement.index}"
        with self._scope():
            self._prepare()
        flags = ["fp16" if fp16 else "fp32"]
        flags += [f"compiled {options.compile_mode}"] if self._compiled else []
        flags += ["cuda graphs"] if self._graphs else []
        self._description += f" ({', '.join(flags)})"

    @property
    def description(self) -> str:
        return self._description

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        """Inference mode, and on CUDA the slot's device and stream."""
        with torch.inference_mode():
            if self._stream is None:
                yield
                return
            with torch.cuda.device(self._device), torch.cuda.stream(self._stream):
                yield

    def _forward(self, *batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """uint8 NHWC on the device -> the model's outputs, uint8 NHWC for images (what is compiled)."""
        # indexed loops and a plain isinstance: constructs torch.compile traces without graph breaks
        feeds = [pixels_to_model(batches[i], fmt) for i, fmt in enumerate(self._in_formats)]
        out = self._module(*feeds)
        results = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(model_to_pixels(results[i], fmt) for i, fmt in enumerate(self._out_formats))

    def _prepare(self) -> None:
        """Run every prepared shape and batch size once: compiles, autotunes, captures graphs."""
        run = self._compiled or self._forward
        for height, width in sorted(self._shapes):
            for batch in self._batches:
                example = [
                    torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, device=self._device)
                    for _ in self._in_formats
                ]
                run(*example)
                if self._use_graphs:
                    self._try_capture((batch, height, width), run, example)
        if self._stream is not None:
            self._stream.synchronize()

    def _try_capture(self, key: ShapeKey, run: Forward, example: list[torch.Tensor]) -> None:
        """Capture a graph for `key`; a model that cannot be captured runs without graphs."""
        try:
            self._graphs[key] = self._capture(run, example)
        except RuntimeError as exc:  # e.g. a module that reads a device tensor on the host while running
            log.warning("%s: no CUDA graphs for this model, it cannot be captured: %s", self._description, exc)
            self._use_graphs = False
            self._graphs.clear()

    def _capture(self, run: Forward, example: list[torch.Tensor]) -> CapturedGraph:
        run(*example)  # warm up on the static buffers, on this (non-default) stream, before capturing
        graph = torch.cuda.CUDAGraph()
        # thread_local: other slots keep running on their own threads while this one captures
        with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
            outputs = run(*example)
        return CapturedGraph(graph, example, outputs)

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self._errors(), self._scope():
            return self._download(self._run(inputs)[0])

    def infer_on_device(self, inputs: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """`infer` without the download: the outputs stay on the device (`DeviceOutputSlot`)."""
        with self._errors(), self._scope():
            outputs, static = self._run(inputs)
            if static:  # a CUDA graph's output buffers: the next replay overwrites them
                outputs = [out.clone() for out in outputs]
            if self._stream is not None:
                wait_for(self._stream)
            return outputs

    def input_buffer(self, index: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """A view of input `index`'s pinned staging memory (`PinnedInputSlot`); `_upload` then
        copies nothing on the host."""
        torch_dtype = torch.from_numpy(np.empty(0, dtype)).dtype
        count = int(np.prod(shape))
        return self._staging_for(index, torch_dtype, count)[:count].view(shape).numpy()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if _is_cuda_failure(exc):
                raise UnrecoverableError(f"{self._description}: {exc}") from exc
            raise

    def _run(self, inputs: Sequence[np.ndarray]) -> tuple[list[torch.Tensor], bool]:
        """The batch's outputs on the device (first `n` rows), and whether they are a graph's static buffers.

        A batch whose size was not prepared runs as several prepared sizes (`batch_chunks`: 5 rows
        as 4 + 1) rather than padded up to the next one (5 as 8: three rows of GPU time for nothing)."""
        n, height, width = inputs[0].shape[:3]
        prepared = (height, width) in self._shapes and (self._compiled is not None or bool(self._graphs))
        chunks = batch_chunks(n, self._batches) if prepared else []
        if len(chunks) > 1:
            return self._run_chunks(inputs, chunks, height, width), False
        batch = chunks[0][1] if chunks else None
        captured = self._graphs.get((batch, height, width)) if batch is not None else None
        if captured is not None:
            for index, array in enumerate(inputs):
                self._upload(index, array, captured.inputs[index])
            captured.graph.replay()
            return [out[:n] for out in captured.outputs], True
        rows = batch or n
        feeds = [self._device_batch(index, array, rows) for index, array in enumerate(inputs)]
        run = self._compiled if batch is not None and self._compiled is not None else self._forward
        return [out[:n] for out in run(*feeds)], False

    def _run_chunks(
        self, inputs: Sequence[np.ndarray], chunks: list[tuple[int, int]], height: int, width: int
    ) -> list[torch.Tensor]:
        """The batch uploaded once, run as prepared sizes one after the other, outputs joined."""
        n = inputs[0].shape[0]
        whole = [self._device_batch(index, array, n) for index, array in enumerate(inputs)]
        parts: list[list[torch.Tensor]] = []
        start = 0
        for rows, size in chunks:
            feeds = [tensor[start : start + rows] for tensor in whole]
            captured = self._graphs.get((size, height, width))
            if captured is not None:
                for index, feed in enumerate(feeds):
                    captured.inputs[index][:rows].copy_(feed)
                captured.graph.replay()
                parts.append([out[:rows].clone() for out in captured.outputs])  # the next replay overwrites them
            else:
                if size != rows:
                    padded = [feed.new_empty((size, *feed.shape[1:])) for feed in feeds]
                    for target, feed in zip(padded, feeds, strict=True):
                        target[:rows].copy_(feed)
                    feeds = padded
                run = self._compiled if self._compiled is not None else self._forward
                parts.append([out[:rows] for out in run(*feeds)])
            start += rows
        return [torch.cat([part[i] for part in parts]) for i in range(len(parts[0]))]

    def _device_batch(self, index: int, array: np.ndarray, rows: int) -> torch.Tensor:
        """`array` on the device, in a tensor of `rows` rows (rows past the array's are padding)."""
        dtype = torch.from_numpy(array[:0]).dtype
        target = torch.empty((rows, *array.shape[1:]), dtype=dtype, device=self._device)
        self._upload(index, array, target)
        return target

    def _upload(self, index: int, array: np.ndarray, target: torch.Tensor) -> None:
        """Copy `array` into the first rows of `target` (on CUDA through pinned staging memory)."""
        source = torch.from_numpy(np.ascontiguousarray(array))
        if self._cuda:
            staging = self._staging_for(index, source.dtype, source.numel())
            view = staging[: source.numel()].view(source.shape)
            if source.data_ptr() != view.data_ptr():  # else stacked into the staging memory already
                view.copy_(source)
            source = view
        # non_blocking from pinned memory: the copy runs on the slot's stream, asynchronously
        target[: array.shape[0]].copy_(source, non_blocking=True)

    def _staging_for(self, index: int, dtype: torch.dtype, count: int) -> torch.Tensor:
        """Input `index`'s pinned staging memory, at least `count` elements of `dtype` (grown as needed)."""
        staging = self._staging.get(index)
        if staging is None or staging.dtype != dtype or staging.numel() < count:
            staging = torch.empty(count, dtype=dtype, pin_memory=self._cuda)
            self._staging[index] = staging
        return staging

    def _download(self, outputs: list[torch.Tensor]) -> list[np.ndarray]:
        """Device outputs -> numpy arrays (on CUDA: viewing fresh pinned memory, after one stream sync)."""
        if self._stream is None:
            return [out.contiguous().numpy() for out in outputs]
        hosts = [torch.empty(out.shape, dtype=out.dtype, pin_memory=True) for out in outputs]
        for host, out in zip(hosts, outputs, strict=True):
            host.copy_(out, non_blocking=True)
        wait_for(self._stream)
        # the arrays keep their pinned blocks alive; torch's host allocator reuses them once freed
        return [host.numpy() for host in hosts]

    def close(self) -> None:
        if self._stream is not None:
            self._stream.synchronize()
        self._graphs.clear()
        self._staging.clear()
        self._compiled = None


def _compile(forward: Forward, mode: str) -> Forward:
    """`torch.compile` for fixed shapes; every slot and shape adds variants of the same code object."""
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    compiled: Forward = torch.compile(forward, mode=mode, dynamic=False)
    return compiled


def _is_cuda_failure(exc: BaseException) -> bool:
    """A CUDA error (not an out-of-memory, which fails only the batch) leaves the slot unusable."""
    if isinstance(exc, torch.OutOfMemoryError):
        return False
    return type(exc).__name__ == "AcceleratorError" or "CUDA error" in str(exc)

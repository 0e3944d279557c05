"""ONNX -> TensorRT plan, with the engine cache in front: `ensure_plan` returns a valid plan.

Build steps: the model's ONNX gets uint8 NHWC image I/O folded in (`graph.wrap_uint8_io`); for
FP16 on TensorRT >= 11, which builds strongly typed networks only, it is first converted to
float16 (`graph.to_float16`), while on TensorRT 10 the float32 graph is built with
`BuilderFlag.FP16`. One optimization profile per prepared tile shape covers batch
1..max and sides `min_side`..shape (opt: the largest batch at that shape). The workspace is
limited to `[gpu] workspace_mib`, and one timing cache per TensorRT version and GPU is loaded
before and saved after every build.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from service.repository.config import LoadedConfig, ModelConfig, Precision
from service.repository.gpu import prepared_batch_sizes, prepared_shapes
from service.runtimes.tensorrt.cache import (
    CACHE_FOLDER,
    EngineKey,
    EnginePaths,
    atomic_write,
    file_sha256,
    read_plan,
    write_plan,
)
from service.runtimes.tensorrt.cuda import DeviceInfo
from service.runtimes.tensorrt.graph import WRAP_VERSION, to_float16, wrap_uint8_io

log = logging.getLogger(__name__)


class BuildError(Exception):
    """TensorRT could not parse or build the model; the message says why."""


@dataclass(frozen=True)
class BuildSettings:
    """What a build is asked for (from model.toml, or overridden on the command line)."""

    precision: Precision
    batch_sizes: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]
    min_side: int
    workspace_mib: int

    @classmethod
    def of(cls, config: ModelConfig) -> BuildSettings:
        shapes = prepared_shapes(config.gpu, config.tiling.tile_size)
        return cls(
            precision=config.instances.precision,
            batch_sizes=tuple(prepared_batch_sizes(config.gpu, config.batching.max_batch_size)),
            shapes=tuple(shapes),
            min_side=min(config.gpu.min_side, *(min(shape) for shape in shapes)),
            workspace_mib=config.gpu.workspace_mib,
        )


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def engine_key(model: LoadedConfig, settings: BuildSettings, device: DeviceInfo, trt: Any) -> EngineKey:
    onnx_path = model.file("onnx")
    if onnx_path is None:
        raise BuildError(f"model '{model.config.name}' names no ONNX file to build a TensorRT engine from")
    specs = {"inputs": model.config.inputs, "outputs": model.config.outputs}
    io = json.dumps({side: [s.model_dump() for s in values] for side, values in specs.items()}, sort_keys=True)
    return EngineKey(
        onnx_sha256=file_sha256(onnx_path),
        tensorrt_version=str(trt.__version__),
        gpu_name=device.name,
        compute_capability=device.compute_capability,
        precision=settings.precision,
        strongly_typed=tensorrt_major(trt) >= 11,
        batch_sizes=settings.batch_sizes,
        shapes=settings.shapes,
        min_side=settings.min_side,
        workspace_mib=settings.workspace_mib,
        io=io,
        wrap_version=WRAP_VERSION,
    )


def prepared_onnx(model: LoadedConfig, key: EngineKey) -> bytes:
    """The model's ONNX as TensorRT gets it: float16 if strongly typed FP16, uint8 image I/O."""
    path = model.file("onnx")
    assert path is not None
    graph = onnx.load(str(path))
    if key.strongly_typed and key.precision == "fp16":
        graph = to_float16(graph)
    data: bytes = wrap_uint8_io(graph, model.config.inputs, model.config.outputs).SerializeToString()
    return data


def ensure_plan(
    trt: Any,
    model: LoadedConfig,
    device: DeviceInfo,
    *,
    cache_dir: Path | None = None,
    settings: BuildSettings | None = None,
    rebuild: bool = False,
) -> tuple[bytes, EnginePaths]:
    """The cached plan for this model, GPU, TensorRT and settings, built (and cached) if needed.

    `cache_dir`: the engine cache folder (default: `.engines/` in the model's folder).
    """
    settings = settings or BuildSettings.of(model.config)
    key = engine_key(model, settings, device, trt)
    paths = EnginePaths.of(cache_dir or model.folder / CACHE_FOLDER, model.config.name, key)
    plan = None if rebuild else read_plan(paths, key)
    if plan is None:
        log.info("model %s: building the TensorRT engine %s (this takes a while)", model.config.name, paths.plan.name)
        started = time.perf_counter()
        plan = build_plan(trt, prepared_onnx(model, key), key, model.config, paths.timing_cache)
        write_plan(paths, key, plan)
        log.info("model %s: engine built in %.0f s", model.config.name, time.perf_counter() - started)
    return plan, paths


def build_plan(trt: Any, onnx_bytes: bytes, key: EngineKey, config: ModelConfig, timing_cache: Path) -> bytes:
    """Parse and build; the timing cache is read before and written after."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, key.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"TensorRT cannot parse the ONNX of model '{config.name}': {errors}")
    builder_config = builder.create_builder_config()
    builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, key.workspace_mib << 20)
    if key.precision == "fp16" and not key.strongly_typed:
        builder_config.set_flag(trt.BuilderFlag.FP16)
    for shape in key.shapes:
        builder_config.add_optimization_profile(_profile(trt, builder, network, key, shape))
    cache = _load_timing_cache(builder_config, timing_cache)
    serialized = builder.build_serialized_network(network, builder_config)
    if serialized is None:
        raise BuildError(f"TensorRT could not build model '{config.name}' (see the TensorRT log above)")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(timing_cache, bytes(cache.serialize()))
    return bytes(serialized)


def _network_flags(trt: Any, strongly_typed: bool) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return (1 << int(flag)) if strongly_typed and flag is not None else 0


def _profile(trt: Any, builder: Any, network: Any, key: EngineKey, shape: tuple[int, int]) -> Any:
    """Batch 1..max and sides min_side..shape for every image input; batch only for tensor inputs."""
    profile = builder.create_optimization_profile()
    low, high = min(key.batch_sizes), max(key.batch_sizes)
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = list(tensor.shape)
        if tensor.dtype == trt.DataType.UINT8 and len(dims) == 4:  # a folded image input: N, H, W, C
            channels = dims[3]
            minimum = (low, key.min_side, key.min_side, channels)
            best = (high, shape[0], shape[1], channels)
            profile.set_shape(tensor.name, minimum, best, best)
        else:
            if any(d < 0 for d in dims[1:]):
                raise BuildError(f"tensor input '{tensor.name}' has dynamic dimensions past the batch: give them sizes")
            profile.set_shape(tensor.name, (low, *dims[1:]), (high, *dims[1:]), (high, *dims[1:]))
    return profile


def _load_timing_cache(builder_config: Any, path: Path) -> Any:
    """The timing cache from `path` if it loads for this TensorRT and GPU, else a fresh one."""
    data = path.read_bytes() if path.is_file() else b""
    cache = builder_config.create_timing_cache(data)
    if cache is None or not builder_config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s does not match this TensorRT/GPU; starting a new one", path.name)
        cache = builder_config.create_timing_cache(b"")
        builder_config.set_timing_cache(cache, ignore_mismatch=False)
    return cache

"""The TensorRT runtime's control flow, against fakes of tensorrt and cuda-python (see fake_tensorrt.py).

These tests do not show that TensorRT works: nobody here can run it. They show that the builder
asks for the right profiles, precision and typing, that the engine cache is keyed, reused and
rebuilt as documented, that one engine per device serves several contexts, that `infer` keeps
to the name-based API (profile, shapes, addresses, execute, copies) and returns what the CPU
runtime returns, and that CUDA errors mark the slot broken.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.errors import InferenceFailed, UnrecoverableError
from service.repository.config import LoadedConfig
from service.repository.loader import load_model_config
from service.runtimes.base import SlotPlacement
from service.runtimes.onnxruntime_cpu import OnnxRuntimeSlot
from service.runtimes.tensorrt.__main__ import main as build_cli
from service.runtimes.tensorrt.runtime import TensorRTRuntime
from service.runtimes.tensorrt.slot import Profile, choose_profile, crop_output, pad_to
from tests.support.data import psnr
from tests.support.tiny_models import write_sr_entry
from tests.unit.fake_tensorrt import make_cudart, make_tensorrt

GPU0 = SlotPlacement("cuda:0", 0, 1)


def entry(root: Path, name: str = "tiny-x2", precision: str = "fp32", gpu: str = "", seed: int = 0) -> LoadedConfig:
    folder = write_sr_entry(root, name, 2, tile_size=64, overlap=4, max_batch_size=8, seed=seed)
    config = folder / "model.toml"
    config.write_text(config.read_text() + f'precision = "{precision}"\n' + (f"[gpu]\n{gpu}\n" if gpu else ""))
    return load_model_config(config)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[types.ModuleType, types.ModuleType]]:
    trt, runtime = make_tensorrt(), make_cudart()
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    bindings.runtime = runtime  # type: ignore[attr-defined]
    cuda.bindings = bindings  # type: ignore[attr-defined]
    for name, module in {"tensorrt": trt, "cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.runtime": runtime}.items():
        monkeypatch.setitem(sys.modules, name, module)
    yield trt, runtime
    assert not runtime.memory, "every cudaMalloc/cudaMallocHost was freed"


def reference(model: LoadedConfig, batch: np.ndarray) -> np.ndarray:
    return OnnxRuntimeSlot(model, SlotPlacement("cpu", 0, 1)).infer([batch])[0]


def pixels(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_without_tensorrt_it_says_so(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    assert TensorRTRuntime().unavailable_reason(entry(tmp_path)) == "the tensorrt package is not installed"


def test_with_the_packages_and_a_device_it_is_available(fakes: tuple, tmp_path: Path) -> None:
    runtime = TensorRTRuntime(tmp_path / "cache")
    assert runtime.unavailable_reason(entry(tmp_path)) is None
    assert runtime.devices() == ["cuda:0"]


@pytest.mark.parametrize(
    ("version", "precision", "typed_flags", "builder_flags"),
    [("10.9.0", "fp32", 0, set()), ("10.9.0", "fp16", 0, {"fp16"}), ("11.0.0", "fp16", 1 << 5, set())],
)
def test_slot_returns_what_onnxruntime_returns(
    fakes: tuple, tmp_path: Path, version: str, precision: str, typed_flags: int, builder_flags: set[str]
) -> None:
    trt, _ = fakes
    trt.__version__ = version
    model = entry(tmp_path, precision=precision)
    runtime = TensorRTRuntime(tmp_path / "cache")
    slot = runtime.create_slot(model, GPU0)
    config, network = trt.state["built"]
    assert network.flags == typed_flags and config.flags == builder_flags  # 11.x: strongly typed, FP16 in the graph
    assert config.workspace == 4096 << 20
    for n, h, w in [(1, 64, 64), (3, 64, 40), (8, 64, 64), (2, 5, 7)]:  # full, edge, full batch, under min_side
        batch = pixels(n, h, w, seed=n)
        out = slot.infer([batch])[0]
        assert out.shape == (n, 2 * h, 2 * w, 3) and out.dtype == np.uint8
        expected = reference(model, batch)
        if precision == "fp16" and version.startswith("11"):
            assert psnr(out, expected) > 40  # the float16 graph, run by onnxruntime
        elif (h, w) == (5, 7):
            assert psnr(out, expected) > 25  # padded to 16x16 by edge replication: borders differ slightly
        else:
            np.testing.assert_array_equal(out, expected)
    slot.close()


def test_profiles_cover_each_prepared_shape_and_the_smallest_one_is_picked(fakes: tuple, tmp_path: Path) -> None:
    trt, _ = fakes
    model = entry(tmp_path, gpu="shapes = [[64, 64], [48, 96]]\nbatch_sizes = [1, 4, 8]\nmin_side = 8")
    slot = TensorRTRuntime(tmp_path / "cache").create_slot(model, GPU0)
    config, _ = trt.state["built"]
    shapes = [p.shapes["input"] for p in config.profiles]
    assert shapes == [[[1, 8, 8, 3], [8, 64, 64, 3], [8, 64, 64, 3]], [[1, 8, 8, 3], [8, 48, 96, 3], [8, 48, 96, 3]]]
    context = slot._context  # noqa: SLF001 - which profile ran is the point
    slot.infer([pixels(2, 48, 96)])
    assert context.profile == 1
    slot.infer([pixels(2, 40, 40)])
    assert context.profile == 0
    with pytest.raises(InferenceFailed, match="fits no TensorRT profile"):
        slot.infer([pixels(1, 100, 100)])  # larger than every profile: this batch fails, the slot lives on
    assert slot.infer([pixels(1, 64, 64)])[0].shape == (1, 128, 128, 3)
    slot.close()


def test_engine_cache_is_reused_keyed_and_rebuilt(fakes: tuple, tmp_path: Path) -> None:
    trt, _ = fakes
    cache = tmp_path / "cache"
    model = entry(tmp_path)
    TensorRTRuntime(cache).create_slot(model, GPU0).close()
    (plan,) = cache.glob("*.plan")
    key = json.loads(plan.with_suffix(".json").read_text())["key"]
    assert key["gpu_name"] == "Fake GPU 141GB" and key["compute_capability"] == "9.0"
    assert key["tensorrt_version"] == "10.9.0" and key["precision"] == "fp32" and key["shapes"] == [[64, 64]]
    assert plan.name.startswith("tiny-x2.fp32.") and (cache / "timing-trt10.9.0-fake-gpu-141gb-sm9.0.cache").is_file()

    TensorRTRuntime(cache).create_slot(model, GPU0).close()
    assert trt.state["builds"] == 1  # a valid cached plan is loaded, not rebuilt

    plan.write_bytes(b"not a plan")  # corrupt or from another TensorRT: deserialize returns None
    TensorRTRuntime(cache).create_slot(model, GPU0).close()
    assert trt.state["builds"] == 2 and plan.read_bytes().startswith(b"FAKEPLAN")

    trt.__version__ = "10.10.0"  # another TensorRT: another key, another file
    TensorRTRuntime(cache).create_slot(model, GPU0).close()
    assert trt.state["builds"] == 3 and len(list(cache.glob("*.plan"))) == 2

    write_sr_entry(tmp_path, "tiny-x2", 2, tile_size=64, overlap=4, seed=7)  # new weights: new ONNX hash
    TensorRTRuntime(cache).create_slot(load_model_config(tmp_path / "tiny-x2" / "model.toml"), GPU0).close()
    assert trt.state["builds"] == 4


def test_one_engine_per_device_one_context_per_slot(fakes: tuple, tmp_path: Path) -> None:
    trt, _ = fakes
    runtime = TensorRTRuntime(tmp_path / "cache")
    model = entry(tmp_path)
    slots = [runtime.create_slot(model, SlotPlacement("cuda:0", i, 1)) for i in range(3)]
    engine = slots[0]._engine  # noqa: SLF001
    assert all(s._engine is engine for s in slots) and engine.contexts == 3  # noqa: SLF001
    assert trt.state["builds"] == 1
    for slot in slots:
        slot.close()
    assert runtime._engines == {}  # noqa: SLF001 - the last slot released the engine


def test_a_cuda_error_marks_the_slot_broken(fakes: tuple, tmp_path: Path) -> None:
    _, cudart = fakes
    slot = TensorRTRuntime(tmp_path / "cache").create_slot(entry(tmp_path), GPU0)
    cudart.fail["cudaStreamSynchronize"] = cudart.cudaError_t.cudaErrorIllegalAddress
    with pytest.raises(UnrecoverableError, match="cudaStreamSynchronize failed: cudaErrorIllegalAddress"):
        slot.infer([pixels(1, 64, 64)])
    del cudart.fail["cudaStreamSynchronize"]
    slot.close()


def test_build_command_builds_a_repository_into_a_cache(fakes: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trt, _ = fakes
    entry(tmp_path / "repo", "a-x2")
    entry(tmp_path / "repo", "b-x2", seed=3)
    cache = tmp_path / "cache"
    assert build_cli(["build", "--repository", str(tmp_path / "repo"), "--cache", str(cache)]) == 0
    assert trt.state["builds"] == 2 and len(list(cache.glob("*.plan"))) == 2
    assert build_cli(["build", "--model-dir", str(tmp_path / "repo" / "a-x2"), "--cache", str(cache)]) == 0
    assert trt.state["builds"] == 2  # what the server would load is already there
    assert build_cli(["build", "--model-dir", str(tmp_path / "repo" / "a-x2"), "--cache", str(cache), "--batch", "1,16"]) == 0
    assert trt.state["builds"] == 3 and "differ from model.toml" in capsys.readouterr().out


def test_choose_profile_pad_and_crop() -> None:
    profiles = [Profile(0, 1, 8, 16, 256, 256), Profile(1, 1, 8, 16, 540, 960), Profile(2, 1, 4, 16, 512, 512)]
    assert choose_profile(profiles, 8, 256, 256) == profiles[0]
    assert choose_profile(profiles, 8, 300, 300) == profiles[1]  # 512x512 would fit the tile but not batch 8
    assert choose_profile(profiles, 4, 300, 300) == profiles[2]
    assert choose_profile(profiles, 9, 10, 10) is None
    batch = pixels(2, 5, 7)
    padded = pad_to(batch, 16, 16)
    assert padded.shape == (2, 16, 16, 3) and (padded[:, :5, :7] == batch).all() and (padded[:, 15, 6] == batch[:, 4, 6]).all()
    assert crop_output(np.zeros((2, 32, 32, 3)), 5, 7, 16, 16).shape == (2, 10, 14, 3)

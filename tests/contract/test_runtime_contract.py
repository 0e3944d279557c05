"""The runtime contract, the same tests for every runtime that can run here.

onnxruntime (CPU) always; torch where CUDA is available (eager, and compiled with CUDA graphs);
tensorrt where `import tensorrt` works and a GPU is present. A runtime that cannot run is
skipped with its own reason ("torch: no CUDA device", "tensorrt: the tensorrt package is not
installed"). Each slot must return uint8 NHWC of the input's batch size and the model's scale,
agree with onnxruntime on the CPU to a PSNR that depends on its precision, handle odd batch
sizes and shapes it was not prepared for, give the same answer when asked twice, and close.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.repository.config import LoadedConfig
from service.repository.loader import load_model_config
from service.runtimes.base import ExecutionSlot, Runtime, SlotPlacement
from service.runtimes.onnxruntime_cpu import OnnxRuntimeCpu, OnnxRuntimeSlot
from service.runtimes.registry import FACTORIES
from tests.support.data import psnr
from tests.support.tiny_models import write_sr_entry

GPU = pytest.mark.gpu
COMPILED = "compile = true\ncuda_graphs = true\nbatch_sizes = [4, 8]"  # prepared: 64x64 at batch 4 and 8
VARIANTS = [
    pytest.param(("onnxruntime", "fp32", ""), id="onnxruntime"),
    pytest.param(("torch", "fp16", ""), id="torch-fp16", marks=GPU),
    pytest.param(("torch", "fp32", ""), id="torch-fp32", marks=GPU),
    pytest.param(("torch", "fp16", COMPILED), id="torch-compiled-graphs", marks=GPU),
    pytest.param(("tensorrt", "fp16", ""), id="tensorrt-fp16", marks=[GPU, pytest.mark.tensorrt]),
    pytest.param(("tensorrt", "fp32", ""), id="tensorrt-fp32", marks=[GPU, pytest.mark.tensorrt]),
]
MIN_PSNR = {"fp32": 50.0, "fp16": 40.0}  # against onnxruntime float32 on the CPU, uint8 outputs
TILE = 64


def model_entry(root: Path, precision: str, gpu: str) -> LoadedConfig:
    folder = write_sr_entry(root, "tiny-x2", 2, tile_size=TILE, overlap=4, max_batch_size=8, features=16)
    config = folder / "model.toml"
    config.write_text(config.read_text() + f'precision = "{precision}"\n' + (f"[gpu]\n{gpu}\n" if gpu else ""))
    return load_model_config(config)


@pytest.fixture(scope="module")
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ExecutionSlot, LoadedConfig, str]]:
    """One slot per runtime variant, shared by the module's tests (a compiled slot takes a while to prepare)."""
    name, precision, gpu = request.param
    model = model_entry(tmp_path_factory.mktemp(name), precision, gpu)
    runtime: Runtime | None = OnnxRuntimeCpu() if name == "onnxruntime" else FACTORIES[name]()
    assert runtime is not None
    reason = runtime.unavailable_reason(model)
    if reason is not None:
        pytest.skip(f"{name}: {reason}")
    devices = runtime.devices()
    slot = runtime.create_slot(model, SlotPlacement(devices[-1], 0, 2))
    yield slot, model, precision
    slot.close()


def pixels(n: int, h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("case", VARIANTS, indirect=True)
@pytest.mark.parametrize(("n", "h", "w"), [(1, TILE, TILE), (3, TILE, TILE), (8, TILE, TILE), (5, 37, 53), (2, 9, TILE)])
def test_outputs_have_the_batch_and_scale_and_agree_with_onnxruntime(
    case: tuple[ExecutionSlot, LoadedConfig, str], n: int, h: int, w: int
) -> None:
    slot, model, precision = case
    batch = pixels(n, h, w, seed=n * h)
    outputs = slot.infer([batch])
    assert len(outputs) == 1
    (out,) = outputs
    assert out.shape == (n, 2 * h, 2 * w, 3) and out.dtype == np.uint8
    expected = OnnxRuntimeSlot(model, SlotPlacement("cpu", 0, 2)).infer([batch])[0]
    assert psnr(out, expected) >= MIN_PSNR[precision], f"{slot.description}: {psnr(out, expected):.1f} dB"


@pytest.mark.parametrize("case", VARIANTS, indirect=True)
def test_repeated_and_interleaved_calls_give_the_same_answer(case: tuple[ExecutionSlot, LoadedConfig, str]) -> None:
    slot, _, _ = case
    big, small = pixels(8, TILE, TILE, seed=1), pixels(3, 20, 24, seed=2)
    first_big, first_small = slot.infer([big])[0], slot.infer([small])[0]
    for _ in range(3):
        np.testing.assert_array_equal(slot.infer([big])[0], first_big)
        np.testing.assert_array_equal(slot.infer([small])[0], first_small)
    held = first_big.copy()
    slot.infer([pixels(8, TILE, TILE, seed=3)])
    np.testing.assert_array_equal(first_big, held)  # a returned array is not overwritten by the next batch


@pytest.mark.parametrize("case", VARIANTS, indirect=True)
def test_description_names_the_runtime(case: tuple[ExecutionSlot, LoadedConfig, str]) -> None:
    slot, _, _ = case
    assert slot.description.split()[0] in {"onnxruntime", "torch", "tensorrt"}


@GPU
def test_torch_cuda_graphs_replay_a_compiled_srvgg_and_fall_back_where_capture_fails(tmp_path: Path) -> None:
    """SRVGGNetCompact (the repository's architecture) is captured; the tiny model's onnx2torch Resize
    reads its scales on the host while running, cannot be captured, and runs compiled without graphs."""
    torch = pytest.importorskip("torch")
    from engines.archs.srvgg import SRVGGNetCompact
    from engines.tooling.export import export_onnx

    graphs = "compile = true\ncuda_graphs = true\nbatch_sizes = [2, 8]"
    model = model_entry(tmp_path / "srvgg", "fp16", graphs)
    torch.manual_seed(0)
    export_onnx(SRVGGNetCompact(3, 3, 16, 4, 2, "prelu").eval(), model.folder / "model.onnx")
    runtime = FACTORIES["torch"]()
    assert runtime is not None
    reason = runtime.unavailable_reason(model)
    if reason is not None:
        pytest.skip(f"torch: {reason}")
    slot = runtime.create_slot(model, SlotPlacement(runtime.devices()[0], 0, 1))
    assert "cuda graphs" in slot.description and "compiled" in slot.description
    reference = OnnxRuntimeSlot(model, SlotPlacement("cpu", 0, 2))
    for n, h, w in [(1, TILE, TILE), (2, TILE, TILE), (5, TILE, TILE), (8, TILE, TILE), (3, 40, 48)]:
        batch = pixels(n, h, w, seed=n + h)
        out = slot.infer([batch])[0]
        assert out.shape == (n, 2 * h, 2 * w, 3)
        assert psnr(out, reference.infer([batch])[0]) >= MIN_PSNR["fp16"]
    slot.close()
    tiny = model_entry(tmp_path / "tiny", "fp16", graphs)
    fallback = runtime.create_slot(tiny, SlotPlacement(runtime.devices()[0], 0, 1))
    assert "compiled" in fallback.description and "cuda graphs" not in fallback.description
    fallback.close()


@pytest.mark.parametrize("case", VARIANTS, indirect=True)
def test_optional_capabilities_give_the_same_answer(case: tuple[ExecutionSlot, LoadedConfig, str]) -> None:
    """A `DeviceOutputSlot` keeps outputs on the device, equal to `infer`'s and not overwritten by the next
    batch (CUDA graphs' static buffers included); a `PinnedInputSlot` takes a batch stacked into its buffer."""
    from service.runtimes.base import DeviceOutputSlot, PinnedInputSlot

    slot, _, _ = case
    if not isinstance(slot, DeviceOutputSlot | PinnedInputSlot):
        pytest.skip(f"{slot.description}: neither optional capability")
    batch = pixels(8, TILE, TILE, seed=4)
    expected = slot.infer([batch])[0]
    if isinstance(slot, DeviceOutputSlot):
        (kept,) = slot.infer_on_device([batch])
        slot.infer_on_device([pixels(8, TILE, TILE, seed=5)])  # must not overwrite `kept`
        np.testing.assert_array_equal(kept.cpu().numpy(), expected)
    if isinstance(slot, PinnedInputSlot):
        staged = slot.input_buffer(0, batch.shape, batch.dtype)
        staged[...] = batch
        np.testing.assert_array_equal(slot.infer([staged])[0], expected)

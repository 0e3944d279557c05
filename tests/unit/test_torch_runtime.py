"""The torch runtime's parts that run anywhere: pixel conversion, module loading, the slot on the CPU.

The slot runs on any torch device; the runtime offers only CUDA ones. On the CPU it computes in
float32 without streams or pinned memory, which checks the data path (upload, conversion,
model, conversion back, batch handling) against the CPU runtime. CUDA, FP16, torch.compile and
CUDA graphs are covered by tests/contract on a GPU machine.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from service.errors import ConfigError
from service.repository.config import ImageTensor, LoadedConfig
from service.repository.gpu import GpuOptions, batch_chunks, padded_batch, prepared_batch_sizes, prepared_shapes
from service.repository.loader import load_model_config
from service.runtimes.base import SlotPlacement
from service.runtimes.onnxruntime_cpu import OnnxRuntimeSlot
from service.runtimes.registry import choose_runtime
from service.runtimes.tensors import pixels_to_tensor, tensor_to_pixels
from tests.support.tiny_models import write_sr_entry

torch = pytest.importorskip("torch")

from engines.archs.srvgg import SRVGGNetCompact  # noqa: E402
from engines.tooling.export import export_onnx  # noqa: E402
from service.runtimes.torch_cuda.loading import fill_optional_clip_bounds, load_module, source_problem  # noqa: E402
from service.runtimes.torch_cuda.pixels import TORCH_DTYPES, PixelFormat, model_to_pixels, pixels_to_model  # noqa: E402
from service.runtimes.torch_cuda.runtime import TorchCudaRuntime  # noqa: E402
from service.runtimes.torch_cuda.slot import TorchSlot  # noqa: E402

CPU = SlotPlacement("cpu", 0, 1)
SPECS = [
    ImageTensor(name="x", layout=layout, dtype=dtype, value_range=rng, channel_order=order)  # type: ignore[arg-type]
    for layout, dtype, rng, order in itertools.product(
        ["NCHW", "NHWC"], ["float32", "float16"], [(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0)], ["RGB", "BGR"]
    )
] + [ImageTensor(name="x", layout="NHWC", dtype="uint8", value_range=(0.0, 255.0))]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.layout}-{s.dtype}-{s.value_range}-{s.channel_order}")
def test_device_conversion_equals_the_numpy_one(spec: ImageTensor) -> None:
    fmt = PixelFormat.of(spec, TORCH_DTYPES[spec.dtype] if spec.dtype != "uint8" else torch.float32)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    tensor = pixels_to_model(torch.from_numpy(pixels), fmt)
    np.testing.assert_array_equal(tensor.contiguous().numpy(), pixels_to_tensor(pixels, spec))
    noisy = pixels_to_tensor(pixels, spec).astype(np.float32) * 1.01 - 0.003  # off-grid values: rounding matters
    noisy = noisy.astype(pixels_to_tensor(pixels, spec).dtype)
    np.testing.assert_array_equal(model_to_pixels(torch.from_numpy(noisy), fmt).numpy(), tensor_to_pixels(noisy, spec))


def srvgg_entry(root: Path, gpu: str = "") -> tuple[LoadedConfig, torch.nn.Module]:
    torch.manual_seed(0)
    module = SRVGGNetCompact(3, 3, 16, 3, 2, "prelu").eval()
    folder = write_sr_entry(root, "srvgg-x2", 2, tile_size=32, overlap=6)
    export_onnx(module, folder / "model.onnx")
    if gpu:
        (folder / "model.toml").write_text((folder / "model.toml").read_text() + f"[gpu]\n{gpu}\n")
    return load_model_config(folder / "model.toml"), module


def test_slot_on_the_cpu_matches_onnxruntime(tmp_path: Path) -> None:
    model, module = srvgg_entry(tmp_path)
    slot = TorchSlot(module, model, CPU)
    reference = OnnxRuntimeSlot(model, CPU)
    for n, h, w in [(1, 32, 32), (3, 32, 32), (5, 17, 29), (8, 32, 20)]:
        batch = np.random.default_rng(n).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
        (out,) = slot.infer([batch])
        assert out.shape == (n, 2 * h, 2 * w, 3) and out.dtype == np.uint8
        expected = reference.infer([batch])[0]
        assert np.abs(out.astype(int) - expected).max() <= 1 and (out != expected).mean() < 0.001
    assert slot.description == "torch cpu slot 0 (fp32)"
    slot.close()


def test_an_exported_program_is_loaded_from_files_torch(tmp_path: Path) -> None:
    model, module = srvgg_entry(tmp_path)
    dims = {0: torch.export.Dim("n", max=64), 2: torch.export.Dim("h", min=2, max=4096), 3: torch.export.Dim("w", min=2, max=4096)}
    program = torch.export.export(module, (torch.rand(2, 3, 32, 32),), dynamic_shapes={"x": dims})
    torch.export.save(program, str(model.folder / "model.pt2"))
    toml = model.folder / "model.toml"
    toml.write_text(toml.read_text().replace('onnx = "model.onnx"', 'onnx = "model.onnx"\ntorch = "model.pt2"'))
    with_program = load_model_config(toml)
    assert source_problem(with_program) is None
    batch = np.random.default_rng(0).integers(0, 256, (3, 20, 27, 3), dtype=np.uint8)
    (out,) = TorchSlot(load_module(with_program), with_program, CPU).infer([batch])
    np.testing.assert_array_equal(out, OnnxRuntimeSlot(model, CPU).infer([batch])[0])


def test_source_problems_are_named(tmp_path: Path) -> None:
    model, _ = srvgg_entry(tmp_path)
    toml = model.folder / "model.toml"
    (model.folder / "model.ts").write_bytes(b"")
    toml.write_text(toml.read_text().replace('onnx = "model.onnx"', 'onnx = "model.onnx"\ntorch = "model.ts"'))
    assert "not a torch.export program" in str(source_problem(load_model_config(toml)))
    try:
        import onnx2torch  # noqa: F401
    except Exception:
        assert "onnx2torch" in str(source_problem(model))


def test_without_cuda_the_torch_runtime_steps_aside(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    model, _ = srvgg_entry(tmp_path)
    assert TorchCudaRuntime().unavailable_reason(model) == "no CUDA device"
    choice = choose_runtime(model, ["tensorrt", "torch", "onnxruntime"])
    assert choice.runtime.name == "onnxruntime"
    assert choice.skipped["torch"] == "no CUDA device"
    assert choice.skipped["tensorrt"] in {"the tensorrt package is not installed", "no CUDA device"}


def test_prepared_shapes_and_batches() -> None:
    assert prepared_batch_sizes(GpuOptions(), 8) == [1, 2, 4, 8]
    assert prepared_batch_sizes(GpuOptions(), 6) == [1, 2, 4, 6]
    assert prepared_batch_sizes(GpuOptions(batch_sizes=[8, 4, 8]), 8) == [4, 8]
    assert prepared_shapes(GpuOptions(), 256) == [(256, 256)]
    assert prepared_shapes(GpuOptions(shapes=[(540, 960), (256, 256)]), 512) == [(256, 256), (540, 960)]
    assert [padded_batch(n, [1, 2, 4, 8]) for n in (1, 3, 5, 8, 9)] == [1, 4, 8, 8, None]


def test_batches_of_unprepared_sizes_split_into_prepared_ones() -> None:
    sizes = [1, 2, 4, 8]
    assert [batch_chunks(n, sizes) for n in (1, 3, 5, 7, 8)] == [
        [(1, 1)], [(2, 2), (1, 1)], [(4, 4), (1, 1)], [(4, 4), (2, 2), (1, 1)], [(8, 8)]
    ]
    assert batch_chunks(11, sizes) == [(8, 8), (2, 2), (1, 1)]
    assert batch_chunks(5, [4, 8]) == [(4, 4), (1, 4)]  # the last rows padded when no size fits them
    assert batch_chunks(3, [4, 8]) == [(3, 4)]
    for n in range(1, 20):
        chunks = batch_chunks(n, [2, 3, 8])
        assert sum(rows for rows, _ in chunks) == n and all(rows <= size for rows, size in chunks)


def test_a_batch_of_an_unprepared_size_runs_as_prepared_sizes_with_the_same_pixels(tmp_path: Path) -> None:
    """5 rows run as 4 + 1, not padded to 8 (the compiled function stands in for torch.compile's)."""
    model, module = srvgg_entry(tmp_path, "shapes = [[32, 32]]\nbatch_sizes = [1, 2, 4, 8]")
    slot = TorchSlot(module, model, CPU)
    seen: list[int] = []

    def compiled(*feeds: torch.Tensor) -> tuple[torch.Tensor, ...]:
        seen.append(int(feeds[0].shape[0]))
        return slot._forward(*feeds)

    slot._compiled = compiled
    reference = OnnxRuntimeSlot(model, CPU)
    for n, chunks in [(5, [4, 1]), (7, [4, 2, 1]), (8, [8])]:
        seen.clear()
        batch = np.random.default_rng(n).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        (out,) = slot.infer([batch])
        assert seen == chunks
        expected = reference.infer([batch])[0]
        assert out.shape == expected.shape and np.abs(out.astype(int) - expected).max() <= 1
    slot.close()


def test_batch_sizes_must_reach_max_batch_size(tmp_path: Path) -> None:
    folder = write_sr_entry(tmp_path, "bad-x2", 2, max_batch_size=8)
    (folder / "model.toml").write_text((folder / "model.toml").read_text() + "[gpu]\nbatch_sizes = [1, 4]\n")
    with pytest.raises(ConfigError, match=r"gpu.batch_sizes \[1, 4\] must include a size >= batching.max_batch_size"):
        load_model_config(folder / "model.toml")


def test_omitted_clip_minimum_becomes_minus_infinity_with_the_same_result(tmp_path: Path) -> None:
    """`torch.clamp(x, max=0)` exports as Clip(x, "", max), which onnx2torch cannot read; the filled
    graph computes the same (checked with onnxruntime)."""
    import onnx
    import onnxruntime as ort

    class NegativePart(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 0.25 * torch.clamp(x, max=0.0)

    path = tmp_path / "clip.onnx"
    torch.onnx.export(NegativePart(), (torch.rand(1, 3, 4, 4),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    model = onnx.load(str(path))
    assert any(n.op_type == "Clip" and n.input[1] == "" for n in model.graph.node)
    filled = fill_optional_clip_bounds(model)
    assert all(n.input[1] != "" for n in filled.graph.node if n.op_type == "Clip")
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
    run = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]) for m in (model, filled)]
    np.testing.assert_array_equal(run[0].run(None, {"x": x})[0], run[1].run(None, {"x": x})[0])

"""The device-resident output path on the CPU: torch slots that keep outputs as tensors, the worker
pool's batch handling, stitching and PNG filtering on the tensors' device, the host fallbacks.

nvJPEG itself needs a CUDA GPU (covered by bench/side_by_side.py on the device); here every
function runs with CPU tensors and is checked against the numpy path it replaces.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from service.media.images import EncodeOptions, encode
from service.media.png import filter_rows
from service.pipelines.tiling import plan_tiles, stitch
from service.runtimes.base import DeviceOutputSlot, PinnedInputSlot, SlotPlacement
from service.runtimes.onnxruntime_cpu import OnnxRuntimeSlot
from service.workers.pool import run_batch
from tests.support.tiny_models import write_sr_entry

torch = pytest.importorskip("torch")

from engines.archs.srvgg import SRVGGNetCompact  # noqa: E402
from engines.tooling.export import export_onnx  # noqa: E402
from service.media import device  # noqa: E402
from service.pipelines.superres import stitch_and_encode, stitch_on_device  # noqa: E402
from service.repository.loader import load_model_config  # noqa: E402
from service.runtimes.torch_cuda.slot import TorchSlot  # noqa: E402

CPU = SlotPlacement("cpu", 0, 1)


def torch_slot(root: Path) -> tuple[TorchSlot, OnnxRuntimeSlot]:
    torch.manual_seed(0)
    module = SRVGGNetCompact(3, 3, 8, 2, 2, "prelu").eval()
    folder = write_sr_entry(root, "srvgg-x2", 2, tile_size=24, overlap=4)
    export_onnx(module, folder / "model.onnx")
    model = load_model_config(folder / "model.toml")
    return TorchSlot(module, model, CPU), OnnxRuntimeSlot(model, CPU)


def decoded_png(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def test_the_torch_slot_offers_both_capabilities_and_the_onnx_slot_neither(tmp_path: Path) -> None:
    slot, reference = torch_slot(tmp_path)
    assert isinstance(slot, DeviceOutputSlot) and isinstance(slot, PinnedInputSlot)
    assert not isinstance(reference, DeviceOutputSlot) and not isinstance(reference, PinnedInputSlot)


def test_outputs_kept_on_the_device_equal_the_downloaded_ones(tmp_path: Path) -> None:
    slot, _ = torch_slot(tmp_path)
    batch = np.random.default_rng(0).integers(0, 256, (3, 24, 20, 3), dtype=np.uint8)
    (on_device,) = slot.infer_on_device([batch])
    assert isinstance(on_device, torch.Tensor) and on_device.shape == (3, 48, 40, 3)
    np.testing.assert_array_equal(on_device.numpy(), slot.infer([batch])[0])


@pytest.mark.parametrize("count", [1, 3])
def test_run_batch_stacks_into_the_slot_buffer_and_splits_per_item(tmp_path: Path, count: int) -> None:
    slot, reference = torch_slot(tmp_path)
    rng = np.random.default_rng(count)
    items = [(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8),) for _ in range(count)]
    expected = run_batch(reference, items)
    for on_device in (False, True):
        results = run_batch(slot, items, on_device)
        assert len(results) == count
        for got, want in zip(results, expected):
            assert isinstance(got[0], torch.Tensor if on_device else np.ndarray)
            pixels = got[0].numpy() if on_device else got[0]
            assert np.abs(pixels.astype(int) - want[0]).max() <= 1
    # an ONNX Runtime slot answers items that asked for device outputs with numpy arrays
    assert isinstance(run_batch(reference, items, True)[0][0], np.ndarray)


def test_stitching_on_the_device_equals_numpy() -> None:
    rng = np.random.default_rng(1)
    tiles = plan_tiles(50, 70, 32, 4)
    outputs = [rng.integers(0, 256, (2 * t.rows.size, 2 * t.cols.size, 3), dtype=np.uint8) for t in tiles]
    expected = stitch(outputs, tiles, 50, 70, 2)
    got = stitch_on_device([torch.from_numpy(o) for o in outputs], tiles, 50, 70, 2)
    np.testing.assert_array_equal(got.numpy(), expected)
    whole = torch.from_numpy(outputs[0][:64, :64].copy())
    single = plan_tiles(32, 32, 32, 4)
    assert stitch_on_device([whole], single, 32, 32, 2) is whole  # one tile that is the image: no copy
    assert stitch([whole.numpy()], single, 32, 32, 2) is not None


@pytest.mark.parametrize("row_filter", ["none", "sub", "up"])
def test_png_filters_on_the_device_equal_the_numpy_ones(row_filter: str) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    got = device.filter_rows_on_device(torch.from_numpy(pixels), row_filter)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got.numpy(), filter_rows(pixels, row_filter))  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [EncodeOptions("png"), EncodeOptions("png", 6, "sub"), EncodeOptions("jpeg", 95)])
def test_stitch_and_encode_gives_the_same_image_for_tensors_and_arrays(options: EncodeOptions) -> None:
    rng = np.random.default_rng(3)
    tiles = plan_tiles(40, 30, 24, 4)
    outputs = [rng.integers(0, 256, (2 * t.rows.size, 2 * t.cols.size, 3), dtype=np.uint8) for t in tiles]
    from_arrays = stitch_and_encode(outputs, tiles, 40, 30, 2, options)
    from_tensors = stitch_and_encode([torch.from_numpy(o) for o in outputs], tiles, 40, 30, 2, options)
    expected = stitch(outputs, tiles, 40, 30, 2)
    if options.format == "png":  # lossless: exactly the stitched pixels, and the same file either way
        np.testing.assert_array_equal(decoded_png(from_tensors), expected)
        assert from_tensors == from_arrays == encode(expected, None, False, options)
    else:  # CPU tensors fall back to the host encoder: the same bytes
        assert from_tensors == from_arrays and decoded_png(from_tensors).shape == expected.shape


def test_device_encodable_formats() -> None:
    assert device.device_encodable(EncodeOptions("jpeg"))
    assert device.device_encodable(EncodeOptions("png", 3, "none"))
    assert not device.device_encodable(EncodeOptions("png", 1, "paeth"))
    assert not device.device_encodable(EncodeOptions("webp"))
    if not torch.cuda.is_available():
        assert device.nvjpeg_problem() is not None and device.nvjpeg_known()


def test_an_image_nvjpeg_fails_on_is_encoded_on_the_host_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU encoder refusing one image costs that image a CPU encode, not an error answer
    (stood in here: a CPU tensor taken for a CUDA one, and an nvJPEG that fails)."""
    from service.media import nvjpeg

    def failing(rgb: object, quality: int) -> bytes:
        raise nvjpeg.NvJpegError("nvjpegEncodeImage failed: invalid parameter (2)")

    monkeypatch.setattr(device, "_on_cuda", lambda tensor: True)
    monkeypatch.setattr(device, "nvjpeg_problem", lambda: None)
    monkeypatch.setattr(device, "_nvjpeg", failing)
    rgb = np.random.default_rng(5).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    jpeg = device.encode_on_device(torch.from_numpy(rgb), EncodeOptions("jpeg", 90))
    assert jpeg == encode(rgb, None, False, EncodeOptions("jpeg", 90))

"""RGB -> I420 in one CUDA kernel (`i420_kernel`), against the torch path it replaces
(`device_yuv.convert_with_torch`). The kernel needs CuPy and a CUDA GPU; off CUDA the caller
is told to take the torch path."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.support.data import read_rgb, shared

torch = pytest.importorskip("torch")

from service.media import device_yuv, i420_kernel  # noqa: E402

needs_kernel = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("cupy") is None, reason="needs a CUDA GPU and CuPy"
)


def planes(height: int, width: int, device: str = "cpu") -> torch.Tensor:
    return torch.zeros(height * width * 3 // 2, dtype=torch.uint8, device=device)


def test_off_cuda_the_caller_takes_the_torch_path() -> None:
    rgb = torch.full((4, 6, 3), 90, dtype=torch.uint8)
    out = planes(4, 6)
    assert i420_kernel.convert(rgb, 1, False, out) is False
    assert not out.any()  # nothing written: the torch path fills it
    device_yuv.convert_with_torch(rgb, 1, False, out)
    assert out.any()


@needs_kernel
def test_the_kernel_passes_its_start_up_check() -> None:
    assert i420_kernel.problem() is None


@needs_kernel
@pytest.mark.parametrize(("space", "full_range"), [(1, False), (5, False), (1, True), (9, False)])
def test_the_kernel_matches_the_torch_path_on_a_photo_and_a_cropped_view(space: int, full_range: bool) -> None:
    """A crop's rows lie further apart than its width (the pipeline crops odd sizes to even)."""
    photo = torch.from_numpy(read_rgb(shared("images/astronaut.png"))[:258, :390].copy()).cuda()
    cropped = photo[:256, :384]
    want = planes(256, 384, "cuda")
    device_yuv.convert_with_torch(cropped.contiguous(), space, full_range, want)
    got = planes(256, 384, "cuda")
    assert i420_kernel.convert(cropped, space, full_range, got)
    torch.cuda.synchronize()
    difference = (got.int() - want.int()).abs()
    assert int(difference.max()) <= 1  # a fused multiply-add on a rounding boundary
    assert float((difference > 0).float().mean()) < 0.001


@needs_kernel
def test_frames_converted_from_many_threads_at_once_match() -> None:
    """Each codec thread launches on its own stream; every frame is whole when its download returns."""
    rgb = np.random.default_rng(3).integers(0, 256, (512, 768, 3), dtype=np.uint8)
    on_gpu = torch.from_numpy(rgb).cuda()
    want = device_yuv.i420_on_host(on_gpu, 1, False).copy()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: device_yuv.i420_on_host(on_gpu, 1, False).copy(), range(32)))
    for got in results:
        assert np.array_equal(got, want)

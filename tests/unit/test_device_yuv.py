"""RGB -> 4:2:0 on the GPU path (`device_yuv`), run here on CPU tensors (and on CUDA where there
is one) and checked against swscale (`video_encode.rgb_to_frame`), the host path it replaces for
GPU models' video."""

from __future__ import annotations

import numpy as np
import pytest

from service.media.video import ColorInfo
from service.media.video_encode import rgb_to_frame, to_encoder_frame
from tests.support.data import psnr, read_rgb, shared

torch = pytest.importorskip("torch")

from service.media import device_yuv  # noqa: E402


def planes_of(frame: object) -> list[np.ndarray]:
    yuv = frame.to_ndarray(format="yuv420p")  # type: ignore[attr-defined]
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    flat = yuv.reshape(-1)
    area = height * width
    return [
        flat[:area].reshape(height, width),
        flat[area : area * 5 // 4].reshape(height // 2, width // 2),
        flat[area * 5 // 4 :].reshape(height // 2, width // 2),
    ]


@pytest.mark.parametrize(("space", "color_range"), [(1, 1), (6, 1), (1, 2), (9, 1)])
def test_device_planes_match_swscale(space: int, color_range: int) -> None:
    rgb = read_rgb(shared("images/astronaut.png"))[:256, :384].copy()
    color = ColorInfo(space, color_range, 1, 1)
    host = planes_of(rgb_to_frame(rgb, color))
    frame = to_encoder_frame(torch.from_numpy(rgb), color)
    ours = planes_of(frame)
    assert (frame.width, frame.height) == (384, 256)
    assert (frame.colorspace, frame.color_range) == (space, color_range)
    luma_error = np.abs(ours[0].astype(int) - host[0].astype(int))
    assert luma_error.max() <= 1  # the same matrix, rounding apart
    for plane in (1, 2):  # chroma: 2x2 means here, swscale's own filter there
        assert psnr(ours[plane], host[plane]) > 38.0


def test_limited_range_bounds_and_layout() -> None:
    white_black = np.zeros((4, 6, 3), np.uint8)
    white_black[:2] = 255
    i420 = device_yuv.i420_on_host(torch.from_numpy(white_black), 6, False)
    assert i420.shape == (6, 6)
    luma, cb, cr = device_yuv.split_planes(i420, 4, 6)
    assert (luma[:2] == 235).all() and (luma[2:] == 16).all()
    assert (cb == 128).all() and (cr == 128).all()  # grey has no chroma


@pytest.mark.parametrize("height", [8, 6])
def test_frames_wrap_the_planes_or_copy_them(height: int) -> None:
    """Heights of 4k rows get a frame over the downloaded memory, 4k + 2 rows a copy: the same pixels."""
    rgb = np.random.default_rng(1).integers(0, 256, (height, 10, 3), dtype=np.uint8)
    frame = device_yuv.i420_frame(torch.from_numpy(rgb), 1, False)
    reference = device_yuv.split_planes(device_yuv.i420_on_host(torch.from_numpy(rgb), 1, False), height, 10)
    assert (frame.width, frame.height, frame.format.name) == (10, height, "yuv420p")
    for ours, want in zip(planes_of(frame), reference, strict=True):
        assert (ours == want).all()


def test_a_wrapped_frame_outlives_everything_but_itself() -> None:
    """The frame keeps the downloaded memory alive after the caller's references are gone."""
    import gc

    rgb = np.full((8, 6, 3), 200, np.uint8)
    frame = device_yuv.i420_frame(torch.from_numpy(rgb), 1, True)
    gc.collect()
    assert (planes_of(frame)[0] == 200).all()


def test_odd_sizes_lose_the_last_row_and_column() -> None:
    rgb = np.full((7, 9, 3), 100, np.uint8)
    frame = to_encoder_frame(torch.from_numpy(rgb), ColorInfo(6, 1, 2, 2))
    assert (frame.width, frame.height) == (8, 6)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_cuda_frames_match_the_cpu_path_from_many_threads_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    rgb = np.random.default_rng(3).integers(0, 256, (512, 768, 3), dtype=np.uint8)
    want = planes_of(device_yuv.i420_frame(torch.from_numpy(rgb), 1, False))
    on_gpu = torch.from_numpy(rgb).cuda()
    with ThreadPoolExecutor(8) as pool:
        frames = list(pool.map(lambda _: device_yuv.i420_frame(on_gpu, 1, False), range(32)))
    for frame in frames:
        for ours, host in zip(planes_of(frame), want, strict=True):
            assert np.abs(ours.astype(int) - host.astype(int)).max() <= 1  # float rounding of two devices


@needs_cuda
def test_a_cuda_frame_keeps_its_memory_while_later_frames_are_made() -> None:
    """Pinned blocks go back to torch's allocator only when the frame that holds one is freed."""
    first = device_yuv.i420_frame(torch.full((64, 96, 3), 30, dtype=torch.uint8, device="cuda"), 1, True)
    later = [
        device_yuv.i420_frame(torch.full((64, 96, 3), 100 + i, dtype=torch.uint8, device="cuda"), 1, True)
        for i in range(16)
    ]
    del later
    for _ in range(16):  # blocks freed above are reused here; `first`'s must not be
        device_yuv.i420_frame(torch.full((64, 96, 3), 250, dtype=torch.uint8, device="cuda"), 1, True)
    assert (planes_of(first)[0] == 30).all()


def test_unwrapped_frames_own_their_memory() -> None:
    """`wrap=False` (parallel segment encoders queue whole GOPs): the same pixels in the frame's own memory."""
    rgb = np.random.default_rng(2).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    wrapped = device_yuv.i420_frame(torch.from_numpy(rgb), 1, False)
    owned = device_yuv.i420_frame(torch.from_numpy(rgb), 1, False, wrap=False)
    for ours, want in zip(planes_of(owned), planes_of(wrapped), strict=True):
        assert (ours == want).all()
    # the wrapped frame's planes lie back to back as downloaded (I420); an allocated frame pads its rows
    assert wrapped.planes[1].buffer_ptr - wrapped.planes[0].buffer_ptr == 8 * 10
    assert owned.planes[0].line_size > 10


@needs_cuda
def test_downloads_into_registered_memory_match_the_pinned_path() -> None:
    """The encoder process's ring: planes DMA'd straight into memory page-locked for CUDA."""
    rgb = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (64, 96, 3), dtype=np.uint8)).cuda()
    want = device_yuv.i420_on_host(rgb, 1, False).copy()
    memory = np.zeros(3 * 64 * 96 // 2 * 4, np.uint8)  # four slots
    assert device_yuv.register_host_memory(memory)
    try:
        got = device_yuv.i420_on_host(rgb, 1, False, memory[memory.size // 4 : memory.size // 2])
        assert (got == want).all() and not memory[: memory.size // 4].any()
    finally:
        device_yuv.unregister_host_memory(memory)

"""A GPU model's RGB frame -> the encoder's 8-bit 4:2:0 frame: converted on the GPU, one download.

The conversion (BT.601/709/2020 matrix and range from `yuv.rgb_to_yuv`, chroma the mean of each 2x2
block; one CUDA kernel, `i420_kernel`, where CuPy works, else torch operations) writes the three
planes back to back (I420: Y, then Cb, then Cr) into one device buffer, which is downloaded by DMA
into pinned host memory from torch's caching host allocator. The encoder's frame is made over that
memory (`av.VideoFrame.from_numpy_buffer`): no host copy of the 12 MB of a 3840x2160 frame, no fresh
12 MB frame allocation to fault in; the frame holds the memory until libavcodec lets go of it
(libx264 copies its input when it is given a frame), then the block goes back to the allocator for a
later frame. torch keeps the blocks it pinned for reuse, so the pinned memory is about the most
frames alive at once (`frames_in_flight` x 2 per video) x the frame's 4:2:0 size rounded up to a
power of two (16 MB for 3840x2160). Parallel segment encoders queue whole GOPs: their frames are
copied into ordinary memory instead (`wrap=False`).

On CUDA the work runs on the calling thread's own stream (`device.thread_stream`), not the
legacy default one (which would serialise it with the slots' batches); the thread sleeps while
the GPU finishes (`waiting.wait_for_current`). CPU tensors (tests, servers without a GPU) take
the same path without the download.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import av
import numpy as np

from service.media import i420_kernel
from service.media.yuv import rgb_to_yuv

if TYPE_CHECKING:
    import torch


def i420_frame(rgb: torch.Tensor, space: int, full_range: bool, wrap: bool = True) -> av.VideoFrame:
    """HxWx3 uint8 RGB on a device (H, W even) -> a yuv420p frame of the host (untagged).

    With `wrap`, heights that are multiples of 4 get a frame over the downloaded memory itself;
    otherwise (or for H = 4k + 2 rows, a 4:2:0 buffer PyAV cannot wrap) the planes are copied into a
    frame of its own, whose memory is ordinary and freed with it: for frames that wait long before
    the encoder takes them (parallel segment encoders queue whole GOPs), so that pinned memory stays
    bounded by the frames in flight."""
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    i420 = i420_on_host(rgb, space, full_range)
    if wrap and height % 4 == 0:
        return av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, pixels in zip(frame.planes, split_planes(i420, height, width), strict=True):
        np.copyto(plane_pixels(plane), pixels)
    return frame


def i420_on_host(rgb: torch.Tensor, space: int, full_range: bool, target: np.ndarray | None = None) -> np.ndarray:
    """The I420 planes of `rgb` (HxWx3 uint8, H and W even) on the host: an (H * 3/2) x W array,
    in pinned memory when `rgb` is on CUDA, filled when this returns. With `target` (a C-contiguous
    uint8 array of H * W * 3/2 bytes, best registered with CUDA: `register_host_memory`) the planes
    are downloaded into it instead, and it is returned."""
    import torch

    from service.media.device import side_stream
    from service.runtimes.torch_cuda.waiting import wait_for_current

    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    with side_stream(rgb.device):
        planes = torch.empty(height * width * 3 // 2, dtype=torch.uint8, device=rgb.device)
        if not i420_kernel.convert(rgb, space, full_range, planes):  # one CUDA kernel where CuPy works
            convert_with_torch(rgb, space, full_range, planes)
        if target is not None:
            torch.from_numpy(target.reshape(-1)).copy_(planes, non_blocking=rgb.device.type == "cuda")
            if rgb.device.type == "cuda":
                wait_for_current(rgb.device)
            return target.reshape(height * 3 // 2, width)
        if rgb.device.type != "cuda":
            return planes.numpy().reshape(height * 3 // 2, width)
        host = torch.empty(planes.numel(), dtype=torch.uint8, pin_memory=True)
        host.copy_(planes, non_blocking=True)  # the allocator keeps the block until this copy is done
        wait_for_current(rgb.device)
    return host.numpy().reshape(height * 3 // 2, width)


def register_host_memory(memory: np.ndarray) -> bool:
    """Page-lock `memory` (C-contiguous) for CUDA, so downloads into it are DMA without a staging
    copy; False where that is not possible (no CUDA). The caller keeps `memory` alive until
    `unregister_host_memory`."""
    import torch

    if not torch.cuda.is_available():
        return False
    cudart = torch.cuda.cudart()  # type: ignore[no-untyped-call]
    return int(cudart.cudaHostRegister(memory.ctypes.data, memory.nbytes, 0)) == 0


def unregister_host_memory(memory: np.ndarray) -> None:
    import torch

    torch.cuda.cudart().cudaHostUnregister(memory.ctypes.data)  # type: ignore[no-untyped-call]


def split_planes(i420: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H x W), Cb and Cr (H/2 x W/2) planes of an I420 array."""
    flat = i420.reshape(-1)
    area, quarter = height * width, height * width // 4
    return (
        flat[:area].reshape(height, width),
        flat[area : area + quarter].reshape(height // 2, width // 2),
        flat[area + quarter :].reshape(height // 2, width // 2),
    )


def convert_with_torch(rgb: torch.Tensor, space: int, full_range: bool, planes: torch.Tensor) -> None:
    """Y, Cb, Cr of `rgb` into the flat I420 tensor `planes` (on the current stream), in six GPU
    calls: every call is a trip through Python and the GIL on a codec thread, while the encoder's
    thread waits for the GIL after each of its calls into libx264. The matrix gives all three
    components at full resolution (the GPU does not notice the extra work); the offsets carry +0.5,
    so the cast to uint8, which truncates, rounds; chroma is the mean of each 2x2 block. On CUDA
    with CuPy, `i420_kernel` does the same in one kernel; this is the reference it is checked against."""
    import torch

    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    weights, shift = _coefficients(str(rgb.device), space, full_range)
    yuv = torch.addmm(shift, rgb.reshape(-1, 3).to(torch.float32), weights).clamp_(0, 255)
    area = height * width
    planes[:area].view(height, width).copy_(yuv[:, 0].view(height, width))
    chroma = yuv.view(height // 2, 2, width // 2, 2, 3)[..., 1:].mean(dim=(1, 3))
    planes[area:].view(2, height // 2, width // 2).copy_(chroma.permute(2, 0, 1))


@functools.lru_cache(maxsize=64)
def _coefficients(device: str, space: int, full_range: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The conversion's matrix (3x3, transposed: RGB rows) and offsets (+0.5: rounding) on
    `device`, made once: a copy from the host each frame would wait for the GPU twice per frame."""
    import torch

    matrix, offset = rgb_to_yuv(space, full_range)
    weights = torch.as_tensor(matrix.T.copy(), dtype=torch.float32, device=device)
    return weights, torch.as_tensor(offset + 0.5, dtype=torch.float32, device=device)


def plane_pixels(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable height x width view of a frame plane's memory (rows `line_size` apart)."""
    flat = np.frombuffer(memoryview(plane), np.uint8)[: plane.line_size * plane.height]
    return flat.reshape(plane.height, plane.line_size)[:, : plane.width]

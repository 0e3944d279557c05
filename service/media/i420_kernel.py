"""RGB -> 8-bit I420 in one CUDA kernel (CuPy), for the video encoder's frames of a GPU model.

The torch path (`device_yuv.convert_with_torch`) takes six calls per frame and ~600 MB of GPU memory
traffic at 3840x2160 (float32 temporaries of the whole frame). Profiled on the H200 at ~260
frames/s, its calls were the busiest Python code of the server's codec threads (~1.3 ms of CPU
per frame, 0.34 cores; bench/results/video_h200_i420_kernel_ab_60s.md). One thread per 2x2
block here reads the 12 RGB bytes once and writes four Y bytes, one Cb and one Cr: one launch,
~37 MB of traffic.

Same arithmetic as the torch path: float32, components clamped to [0, 255] before the chroma
mean, +0.5 in the offsets so the truncating cast rounds. The two can differ by one level where
a value lands on a rounding boundary (fused multiply-adds): `problem()` checks the kernel once
against the torch path (at most one level apart, almost everywhere equal) before it is used;
without CuPy, a GPU or a passing check, frames take the torch path and the reason is logged.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from service.media.yuv import rgb_to_yuv

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
BLOCK = (32, 8)  # threads per block: 2x2 pixel blocks along x, y
_SOURCE = r"""
extern "C" __global__ void rgb_to_i420(
        const unsigned char* rgb, long long pitch, unsigned char* out, int height, int width,
        float m0, float m1, float m2, float m3, float m4, float m5, float m6, float m7, float m8,
        float o0, float o1, float o2) {
    const int cx = blockIdx.x * blockDim.x + threadIdx.x;
    const int cy = blockIdx.y * blockDim.y + threadIdx.y;
    const int cw = width / 2, ch = height / 2;
    if (cx >= cw || cy >= ch) return;
    float cb = 0.f, cr = 0.f;
    for (int dy = 0; dy < 2; ++dy) {
        const int y = 2 * cy + dy;
        const unsigned char* row = rgb + (long long)y * pitch;
        for (int dx = 0; dx < 2; ++dx) {
            const int x = 2 * cx + dx;
            const float r = row[3 * x], g = row[3 * x + 1], b = row[3 * x + 2];
            const float luma = fminf(fmaxf(m0 * r + m1 * g + m2 * b + o0, 0.f), 255.f);
            out[(long long)y * width + x] = (unsigned char)luma;
            cb += fminf(fmaxf(m3 * r + m4 * g + m5 * b + o1, 0.f), 255.f);
            cr += fminf(fmaxf(m6 * r + m7 * g + m8 * b + o2, 0.f), 255.f);
        }
    }
    const long long area = (long long)height * width, chroma = (long long)cy * cw + cx;
    out[area + chroma] = (unsigned char)(cb * 0.25f);
    out[area + area / 4 + chroma] = (unsigned char)(cr * 0.25f);
}
"""
_lock = threading.Lock()
_state: dict[str, Any] = {}
_UNCHECKED = object()
_streams = threading.local()


def problem() -> str | None:
    """Why the kernel cannot convert frames here, or None if it can (checked once, cached; the
    first call compiles the kernel: call it off the event loop)."""
    with _lock:
        if "problem" not in _state:
            _state["problem"] = _check()
            if _state["problem"]:
                log.warning("video frames are converted to 4:2:0 with torch operations: %s", _state["problem"])
            else:
                log.info("video frames of GPU models are converted to 4:2:0 by one CUDA kernel")
        found: str | None = _state["problem"]
        return found


def convert(rgb: torch.Tensor, space: int, full_range: bool, planes: torch.Tensor) -> bool:
    """Y, Cb, Cr of `rgb` (HxWx3 uint8 on CUDA, H and W even, pixels packed) into the flat I420
    tensor `planes` on the same device, on torch's current stream; False (nothing done) where the
    kernel is not usable or the layout is not one it reads."""
    if rgb.device.type != "cuda" or rgb.stride(2) != 1 or rgb.stride(1) != 3:
        return False
    if _state.get("problem", _UNCHECKED) is not None and problem() is not None:  # the lock only until checked
        return False
    _launch(rgb, space, full_range, planes)
    return True


def _launch(rgb: torch.Tensor, space: int, full_range: bool, planes: torch.Tensor) -> None:
    import cupy
    import torch

    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    grid = (-(-width // 2 // BLOCK[0]), -(-height // 2 // BLOCK[1]))
    stream = _cupy_stream(cupy, torch.cuda.current_stream(rgb.device))
    args = (np.uint64(rgb.data_ptr()), np.int64(rgb.stride(0)), np.uint64(planes.data_ptr()))
    with cupy.cuda.Device(rgb.device.index or 0), stream:
        _state["kernel"](grid, BLOCK, (*args, np.int32(height), np.int32(width), *_coefficients(space, full_range)))


def _cupy_stream(cupy: Any, stream: torch.cuda.Stream) -> Any:
    """CuPy's view of torch's stream (one per torch stream and thread)."""
    views: dict[int, Any] = _streams.__dict__.setdefault("views", {})
    handle = int(stream.cuda_stream)
    if handle not in views:
        views[handle] = cupy.cuda.ExternalStream(handle, stream.device.index)
    return views[handle]


@functools.lru_cache(maxsize=64)
def _coefficients(space: int, full_range: bool) -> tuple[np.float32, ...]:
    """The matrix's nine entries (row by row: Y, Cb, Cr) and the three offsets (+0.5: rounding)."""
    matrix, offset = rgb_to_yuv(space, full_range)
    return tuple(np.float32(v) for v in (*np.asarray(matrix).ravel(), *(np.asarray(offset) + 0.5)))


def _check() -> str | None:
    try:
        import cupy
        import torch

        from service.media.device_yuv import convert_with_torch

        if not torch.cuda.is_available():
            return "no CUDA device"
        _state["kernel"] = cupy.RawKernel(_SOURCE, "rgb_to_i420")
        rng = np.random.default_rng(11)
        for height, width, space, full_range in ((34, 46, 1, False), (270, 482, 5, True), (8, 2, 9, False)):
            pixels = torch.from_numpy(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).cuda()
            expected = torch.empty(height * width * 3 // 2, dtype=torch.uint8, device=pixels.device)
            found = torch.empty_like(expected)
            convert_with_torch(pixels, space, full_range, expected)
            _launch(pixels, space, full_range, found)
            torch.cuda.synchronize()
            difference = (found.int() - expected.int()).abs()
            if int(difference.max()) > 1 or float((difference > 0).float().mean()) > 0.01:
                return f"the kernel's {width}x{height} frame differs from the torch conversion in the start-up check"
    except Exception as exc:  # ImportError (no CuPy), no CUDA device, NVRTC problems
        return f"the 4:2:0 kernel is not usable: {type(exc).__name__}: {exc}"
    return None

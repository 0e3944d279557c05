"""PNG decoding with the row filters undone on the GPU (CuPy kernel); ISA-L inflates on the host.

Unfiltering is sequential along a row (Sub, Average, Paeth use the pixel on the left) and down the
image (Up, Average, Paeth use the row above), but pixel (x, y) needs only (x-1, y), (x, y-1) and
(x-1, y-1): one CUDA block walks the anti-diagonals, thread y doing row y's pixel x = step - y, a
barrier between steps (width + height - 1 steps; rows beyond the block's 1024 threads in bands).
A 960x540 image is ~1500 steps on one SM, with the other SMs free for other images and the model.

Checked once before use (`problem()`): the kernel must give back, exactly, images filtered with
every filter type on the host (`png_rows.filter_rows_by_type`); else (no CuPy, no GPU, a wrong
result) PNGs are decoded on the host, and the reason is logged. Nothing here runs without a GPU;
the host-side parts are tested in tests/unit/test_png_rows.py.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from service.media.png_rows import FilteredRows, filter_rows_by_type

log = logging.getLogger(__name__)
MAX_THREADS = 1024
_SOURCE = r"""
extern "C" __global__ void png_unfilter_rgb(const unsigned char* rows, unsigned char* out, int height, int width) {
    const int stride = width * 3;
    for (int band = 0; band < height; band += blockDim.x) {
        const int y = band + threadIdx.x;
        const bool mine = y < height;
        const int band_rows = min((int)blockDim.x, height - band);
        const int type = mine ? rows[(size_t)y * (stride + 1)] : 0;
        int a[3] = {0, 0, 0};   // left
        int ul[3] = {0, 0, 0};  // upper left
        for (int step = 0; step < width + band_rows - 1; ++step) {
            const int x = step - (int)threadIdx.x;
            if (mine && x >= 0 && x < width) {
                const unsigned char* raw = rows + (size_t)y * (stride + 1) + 1 + (size_t)x * 3;
                unsigned char* px = out + (size_t)y * stride + (size_t)x * 3;
                for (int c = 0; c < 3; ++c) {
                    const int b = y > 0 ? px[c - stride] : 0;
                    int pred = 0;
                    if (type == 1) pred = a[c];
                    else if (type == 2) pred = b;
                    else if (type == 3) pred = (a[c] + b) >> 1;
                    else if (type == 4) {
                        const int p = a[c] + b - ul[c];
                        const int pa = abs(p - a[c]), pb = abs(p - b), pc = abs(p - ul[c]);
                        pred = (pa <= pb && pa <= pc) ? a[c] : (pb <= pc ? b : ul[c]);
                    }
                    const int value = (raw[c] + pred) & 255;
                    px[c] = (unsigned char)value;
                    a[c] = value;
                    ul[c] = b;
                }
            }
            __syncthreads();
        }
    }
}
"""
_lock = threading.Lock()
_state: dict[str, Any] = {}
_streams = threading.local()


def problem() -> str | None:
    """Why PNGs cannot be unfiltered on the GPU here, or None if they can (checked once, cached)."""
    with _lock:
        if "problem" not in _state:
            _state["problem"] = _check()
            if _state["problem"]:
                log.warning("PNG inputs are decoded on the CPU: %s", _state["problem"])
            else:
                log.info("PNG inputs of GPU models are unfiltered on the GPU")
        problem: str | None = _state["problem"]
        return problem


def known() -> bool:
    """Whether `problem` has run (it compiles a kernel: call it off the event loop)."""
    return "problem" in _state


def unfilter(rows: FilteredRows) -> np.ndarray:
    """The image's HxWx3 uint8 RGB pixels (on the host), its rows unfiltered on the GPU."""
    import cupy

    stream = _thread_stream(cupy)
    with stream:
        filtered = cupy.asarray(rows.rows)
        pixels = cupy.empty((rows.height, rows.width * 3), dtype=cupy.uint8)
        threads = min(MAX_THREADS, rows.height)
        _state["kernel"]((1,), (threads,), (filtered, pixels, np.int32(rows.height), np.int32(rows.width)))
        host: np.ndarray = pixels.get(stream=stream)
    return host.reshape(rows.height, rows.width, 3)


def _thread_stream(cupy: Any) -> Any:
    """This thread's own non-blocking stream (not the legacy default one the model's slots wait on)."""
    if not hasattr(_streams, "stream"):
        _streams.stream = cupy.cuda.Stream(non_blocking=True)
    return _streams.stream


def _check() -> str | None:
    try:
        import cupy

        _state["kernel"] = cupy.RawKernel(_SOURCE, "png_unfilter_rgb")
        rng = np.random.default_rng(7)
        for height, width in ((29, 37), (MAX_THREADS + 77, 5)):  # one block; bands of rows
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            pixels[: height // 2] //= 7  # smooth parts too, where the predictors tie
            types = np.arange(height) % 5
            rows = FilteredRows(width, height, filter_rows_by_type(pixels, types))
            if not np.array_equal(unfilter(rows), pixels):
                return f"the GPU unfiltering gave a wrong {width}x{height} image in the start-up check"
    except Exception as exc:  # ImportError (no CuPy), no CUDA device, NVRTC problems
        return f"CuPy is not usable: {type(exc).__name__}: {exc}"
    return None

"""nvJPEG's encoder, called through ctypes: 4:2:0 chroma, one encoder state per thread, no lock.

torchvision's `encode_jpeg` on CUDA tensors (the other way to nvJPEG from Python) always encodes
4:4:4 chroma, keeps one encoder state for the process (concurrent calls can return corrupt data,
pytorch/vision#9060, so we serialised them) and wants planar CHW input (a copy of every 4K
answer). Here, as libjpeg and OpenCV do by default, chroma is subsampled 2x2 (4:2:0): half the
coefficients to transform and entropy-code, on the GPU the model shares, and ~20 % fewer bytes.
Each thread has its own encoder state and parameters on its own CUDA stream, which nvJPEG
allows; the library handle is shared (one per GPU).

The library is the libnvjpeg that torch's CUDA wheels ship (`nvidia-nvjpeg`), or the one
torchvision loaded. `load()` says why it is unusable, and the caller then falls back to
torchvision. Only the encoder API of nvJPEG 11.x-13.x is used (`nvjpegEncodeImage` with
interleaved RGB input, `nvjpegEncodeRetrieveBitstream`).
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Subsampling = Literal["420", "444"]
_CSS: dict[Subsampling, int] = {"444": 0, "420": 2}  # nvjpegChromaSubsampling_t
_INPUT_RGBI = 5  # nvjpegInputFormat_t: interleaved RGB, one plane
_MAX_COMPONENT = 4
_STATUS = {
    1: "not initialized", 2: "invalid parameter", 3: "bad JPEG", 4: "JPEG not supported",
    5: "allocator failure", 6: "execution failed", 7: "architecture mismatch", 8: "internal error",
    9: "implementation not supported", 10: "incomplete bitstream",
}  # fmt: skip


class NvJpegError(RuntimeError):
    """An nvJPEG call failed."""


class _Image(ctypes.Structure):
    """nvjpegImage_t: a pointer and a pitch per plane."""

    _fields_ = [("channel", ctypes.c_void_p * _MAX_COMPONENT), ("pitch", ctypes.c_size_t * _MAX_COMPONENT)]


@dataclass
class _Library:
    dll: ctypes.CDLL
    path: str
    handles: dict[int, ctypes.c_void_p] = field(default_factory=dict)  # per CUDA device
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, name: str, *args: object) -> None:
        status = getattr(self.dll, name)(*args)
        if status != 0:
            raise NvJpegError(f"{name} failed: {_STATUS.get(status, 'status')} ({status})")

    def handle(self, device: int) -> ctypes.c_void_p:
        """The library handle for CUDA device `device` (created with that device current)."""
        with self.lock:
            if device not in self.handles:
                handle = ctypes.c_void_p()
                self.call("nvjpegCreateSimple", ctypes.byref(handle))
                self.handles[device] = handle
            return self.handles[device]


_loaded: list[_Library | str] = []  # one entry once load() has run: the library, or why not
_load_lock = threading.Lock()
_per_thread = threading.local()


def load() -> str | None:
    """Load libnvjpeg once: None if usable, else why not."""
    with _load_lock:
        if not _loaded:
            try:
                _loaded.append(_open())
            except (OSError, NvJpegError, AttributeError) as exc:
                _loaded.append(f"{type(exc).__name__}: {exc}")
        found = _loaded[0]
    return found if isinstance(found, str) else None


def library_path() -> str | None:
    """The libnvjpeg file in use (after a successful `load()`)."""
    return _loaded[0].path if _loaded and isinstance(_loaded[0], _Library) else None


def _candidates() -> list[str]:
    """libnvjpeg files: one already loaded into this process (torchvision's), then the wheels'."""
    found: list[str] = []
    maps = Path("/proc/self/maps")
    if maps.exists():
        for line in maps.read_text().splitlines():
            path = line.split()[-1]
            if "libnvjpeg" in os.path.basename(path) and path not in found:
                found.append(path)
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        found += sorted(glob.glob(os.path.join(root, "**", "libnvjpeg.so*"), recursive=True), reverse=True)
    return found + ["libnvjpeg.so.13", "libnvjpeg.so.12", "libnvjpeg.so.11", "libnvjpeg.so"]


def _open() -> _Library:
    errors = []
    for candidate in _candidates():
        try:
            dll = ctypes.CDLL(candidate)
        except OSError as exc:
            errors.append(str(exc))
            continue
        library = _Library(dll, candidate)
        library.dll.nvjpegCreateSimple  # noqa: B018  (an AttributeError here: not an nvJPEG library)
        return library
    raise OSError("no libnvjpeg found: " + "; ".join(errors[-3:]))


class _ThreadEncoder:
    """One thread's encoder state, its parameters per (quality, subsampling), and its stream."""

    def __init__(self, library: _Library, device: int, stream: int) -> None:
        self._library, self._stream = library, ctypes.c_void_p(stream)
        self._handle = library.handle(device)
        self._state = ctypes.c_void_p()
        library.call("nvjpegEncoderStateCreate", self._handle, ctypes.byref(self._state), self._stream)
        self._params: dict[tuple[int, Subsampling], ctypes.c_void_p] = {}

    def params(self, quality: int, subsampling: Subsampling) -> ctypes.c_void_p:
        key = (quality, subsampling)
        if key not in self._params:
            lib, params = self._library, ctypes.c_void_p()
            lib.call("nvjpegEncoderParamsCreate", self._handle, ctypes.byref(params), self._stream)
            lib.call("nvjpegEncoderParamsSetQuality", params, ctypes.c_int(quality), self._stream)
            lib.call("nvjpegEncoderParamsSetSamplingFactors", params, ctypes.c_int(_CSS[subsampling]), self._stream)
            lib.call("nvjpegEncoderParamsSetOptimizedHuffman", params, ctypes.c_int(0), self._stream)
            self._params[key] = params
        return self._params[key]

    def encode(
        self, pointer: int, width: int, height: int, quality: int, subsampling: Subsampling
    ) -> tuple[ctypes.Array[ctypes.c_char], int]:
        """Queue the JPEG encode of the HxWx3 uint8 RGB image at device address `pointer` (row
        pitch 3 * width) and its copy to a host buffer on this thread's stream: the buffer and
        the JPEG's length (the bytes are there once the stream has reached this point)."""
        lib = self._library
        image = _Image()
        image.channel[0], image.pitch[0] = pointer, 3 * width
        params = self.params(quality, subsampling)
        lib.call("nvjpegEncodeImage", self._handle, self._state, params, ctypes.byref(image),
                 ctypes.c_int(_INPUT_RGBI), ctypes.c_int(width), ctypes.c_int(height), self._stream)  # fmt: skip
        length = ctypes.c_size_t(0)
        lib.call("nvjpegEncodeRetrieveBitstream", self._handle, self._state, None, ctypes.byref(length), self._stream)
        data = ctypes.create_string_buffer(length.value)
        lib.call("nvjpegEncodeRetrieveBitstream", self._handle, self._state, data, ctypes.byref(length), self._stream)
        return data, length.value


def encode(rgb: torch.Tensor, quality: int, subsampling: Subsampling = "420") -> bytes:
    """JPEG of HxWx3 uint8 RGB on a CUDA device, encoded there; `load()` must have succeeded.

    Runs on this thread's own stream after the caller's current stream (whose work produced
    `rgb`), and returns when the bytes are on the host (so `rgb` may be reused at once)."""
    import torch

    from service.media.device import thread_stream
    from service.runtimes.torch_cuda.waiting import wait_for

    library = _loaded[0] if _loaded else None
    assert isinstance(library, _Library), "nvjpeg.load() first"
    pixels = rgb if rgb.is_contiguous() else rgb.contiguous()
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    device = pixels.device
    producer = torch.cuda.current_stream(device)
    stream = thread_stream(device)  # the codec thread's stream, shared with device.py's work
    stream.wait_stream(producer)
    encoders: dict[int, _ThreadEncoder] = _per_thread.__dict__.setdefault("encoders", {})
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in encoders:
        with torch.cuda.device(index):
            encoders[index] = _ThreadEncoder(library, index, stream.cuda_stream)
    with torch.cuda.device(index):
        data, length = encoders[index].encode(pixels.data_ptr(), width, height, quality, subsampling)
    wait_for(stream)  # the encode and the bitstream's copy are done (and `rgb` free) past this point
    return data.raw[:length]


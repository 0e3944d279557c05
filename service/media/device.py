"""Encoders for pixels that are on the GPU: JPEG (nvJPEG) and PNG row filters there.

A superres answer of a model that runs on the GPU need not come back to the host as raw pixels
(a 3840x2160 frame is 25 MB): the slots keep their outputs on the device (`DeviceOutputSlot`),
the pipeline stitches the tiles there (`service/pipelines/superres.py`), and only the encoded
bytes are downloaded:

- JPEG: nvJPEG, called directly (`service/media/nvjpeg.py`: 4:2:0 chroma like the host path's
  libjpeg, a state per thread) or, where that library cannot be loaded, through torchvision's
  `encode_jpeg` (4:4:4, one encode at a time). Only the ~1 MB file per 4K frame crosses the bus,
  and no CPU core spends 30 ms in libjpeg.
- PNG with a whole-image row filter (`none`, `sub`, `up`): the filter runs on the GPU, the
  filtered rows are downloaded (the same bytes as the pixels, no host pass over them) and ISA-L
  deflates them on the CPU (`service/media/png.py`).
- Video frames: RGB -> 8-bit 4:2:0 on the GPU, downloaded into pinned memory that becomes the
  encoder's frame (`service/media/device_yuv.py`): the host receives half the bytes, no CPU core
  spends ~30 ms per 4K frame in swscale, and no host copy is made.

nvJPEG's encoder in torchvision runs on its own stream and does not wait for the caller's, so
every function here synchronises the current stream before handing a tensor over, and before
dropping tensors that other streams (the slots') may reuse (`nvjpeg.encode` orders its own stream
after the caller's). torch is imported lazily: this module is imported by servers without it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from service.media.images import EncodeOptions, encode
from service.media.png import FILTER_TYPES, RowFilter, png_from_filtered

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
DEVICE_PNG_FILTERS = frozenset(FILTER_TYPES)
_probe_lock = threading.Lock()
# torchvision's CUDA encode_jpeg is not safe to call from several threads at once: concurrent calls
# can return corrupt JPEG data (pytorch/vision#9060). One encode at a time (about 0.4 ms for 4K).
_nvjpeg_lock = threading.Lock()
_thread_streams = threading.local()
_nvjpeg_state: dict[str, str | None] = {}  # "cuda" -> None (works) or why it does not
_nvjpeg_direct: list[bool] = [False]  # whether service/media/nvjpeg.py encodes (else torchvision)


def nvjpeg_known() -> bool:
    """Whether `nvjpeg_problem` has run (it is slow once: call it off the event loop)."""
    return "cuda" in _nvjpeg_state


def nvjpeg_problem() -> str | None:
    """Why JPEG cannot be encoded on the GPU here, or None if it can (probed once, cached)."""
    with _probe_lock:
        if "cuda" not in _nvjpeg_state:
            _nvjpeg_state["cuda"] = _probe_nvjpeg()
            if _nvjpeg_state["cuda"]:
                log.warning("JPEG answers are encoded on the CPU: %s", _nvjpeg_state["cuda"])
            elif _nvjpeg_direct[0]:
                from service.media import nvjpeg

                log.info("JPEG answers of GPU models are encoded on the GPU (%s, 4:2:0)", nvjpeg.library_path())
            else:
                log.info("JPEG answers of GPU models are encoded on the GPU (nvJPEG through torchvision, 4:4:4)")
        return _nvjpeg_state["cuda"]


def _probe_nvjpeg() -> str | None:
    """None if nvJPEG encodes here: directly (preferred) or through torchvision."""
    try:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device"
    except ImportError as exc:
        return f"no torch: {exc}"
    direct = _probe_direct_nvjpeg()
    if direct is None:
        _nvjpeg_direct[0] = True
        return None
    log.info("nvJPEG cannot be called directly (%s); trying torchvision's encoder", direct)
    try:
        from torchvision.io import encode_jpeg

        sample = torch.zeros((3, 16, 16), dtype=torch.uint8, device="cuda")
        encoded = encode_jpeg(sample, quality=90)
        assert isinstance(encoded, torch.Tensor) and encoded.numel() > 0
    except Exception as exc:  # ImportError, torchvision without nvJPEG, a driver problem
        return f"nvJPEG is not usable: directly: {direct}; through torchvision: {type(exc).__name__}: {exc}"
    return None


def _probe_direct_nvjpeg() -> str | None:
    """None if `service/media/nvjpeg.py` loads and encodes a sample into a JPEG that decodes."""
    import cv2
    import torch

    from service.media import nvjpeg

    problem = nvjpeg.load()
    if problem is not None:
        return problem
    try:
        sample = torch.zeros((16, 16, 3), dtype=torch.uint8, device="cuda")
        sample[:, 8:] = 200
        decoded = cv2.imdecode(np.frombuffer(nvjpeg.encode(sample, 90), np.uint8), cv2.IMREAD_COLOR)
    except Exception as exc:  # an nvJPEG error, a driver problem
        return f"{type(exc).__name__}: {exc}"
    if decoded is None or decoded.shape != (16, 16, 3) or abs(int(decoded[8, 12, 1]) - 200) > 8:
        return "its sample JPEG did not decode to the sample"
    return None


def device_encodable(options: EncodeOptions) -> bool:
    """Whether `options` has an encoder on the GPU (nvJPEG availability aside)."""
    return options.format == "jpeg" or (options.format == "png" and options.png_filter in DEVICE_PNG_FILTERS)


def encode_on_device(rgb: torch.Tensor, options: EncodeOptions) -> bytes:
    """HxWx3 uint8 RGB on a device -> JPEG (nvJPEG) or PNG (filter on the device, deflate on the host)."""
    if options.format == "png" and options.png_filter in DEVICE_PNG_FILTERS:
        level = 1 if options.quality is None else options.quality
        filtered = _download(filter_rows_on_device(rgb, options.png_filter))
        return png_from_filtered(filtered, int(rgb.shape[1]), int(rgb.shape[0]), int(rgb.shape[2]), level)
    if options.format == "jpeg" and _on_cuda(rgb) and nvjpeg_problem() is None:
        from service.media.nvjpeg import NvJpegError

        try:
            return _nvjpeg(rgb, options.quality or 90)
        except NvJpegError as exc:  # this image only (a size nvJPEG refuses, memory): libjpeg instead
            log.warning("nvJPEG failed on a %dx%d image (%s); encoding it on the CPU", rgb.shape[1], rgb.shape[0], exc)
    return encode(_download(rgb), None, False, options)  # any other case: the host encoders


def _on_cuda(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "cuda"


def filter_rows_on_device(pixels: torch.Tensor, row_filter: RowFilter) -> torch.Tensor:
    """`png.filter_rows` on the tensor's device: HxWxC uint8 -> H x (1 + W*C) filtered rows."""
    import torch

    height, width, channels = (int(d) for d in pixels.shape)
    rows = pixels.contiguous().view(height, width * channels)
    out = torch.empty((height, 1 + width * channels), dtype=torch.uint8, device=pixels.device)
    out[:, 0] = FILTER_TYPES[row_filter]
    body = out[:, 1:]
    if row_filter == "none":
        body.copy_(rows)
    elif row_filter == "sub":
        body[:, :channels] = rows[:, :channels]
        torch.sub(rows[:, channels:], rows[:, :-channels], out=body[:, channels:])  # uint8 wraps mod 256
    else:
        body[0] = rows[0]
        torch.sub(rows[1:], rows[:-1], out=body[1:])
    return out


def side_stream(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """This thread's own CUDA stream on `device` as the current stream (nothing off CUDA)."""
    import torch

    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.cuda.stream(thread_stream(device))


def thread_stream(device: torch.device) -> torch.cuda.Stream:
    """The calling thread's own CUDA stream on `device` (a CUDA device), made at its first use."""
    import torch

    streams: dict[int, torch.cuda.Stream] = _thread_streams.__dict__.setdefault("by_device", {})
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in streams:
        streams[index] = torch.cuda.Stream(device=index)  # type: ignore[no-untyped-call]
    return streams[index]


def _nvjpeg(rgb: torch.Tensor, quality: int) -> bytes:
    import torch
    from torchvision.io import encode_jpeg

    from service.media import nvjpeg
    from service.runtimes.torch_cuda.waiting import wait_for_current

    if _nvjpeg_direct[0]:
        return nvjpeg.encode(rgb, quality)
    chw = rgb.permute(2, 0, 1).contiguous()
    wait_for_current(rgb.device)  # nvJPEG's stream does not wait for ours
    with _nvjpeg_lock:
        encoded = encode_jpeg(chw, quality=quality)
        assert isinstance(encoded, torch.Tensor)
        data = encoded.cpu().numpy().tobytes()  # synchronous: nvJPEG is done with `chw` when this returns
    return data


def _download(tensor: torch.Tensor) -> np.ndarray:
    """A device tensor on the host (through pinned memory on CUDA), after the copy finished."""
    import torch

    from service.runtimes.torch_cuda.waiting import wait_for_current

    if tensor.device.type != "cuda":
        return np.asarray(tensor.contiguous().numpy())
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    wait_for_current(tensor.device)
    return np.asarray(host.numpy())

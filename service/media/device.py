"""Encoders for pixels that are on the GPU: JPEG (nvJPEG) and PNG row filters there.

A superres answer of a model that runs on the GPU need not come back to the host as raw pixels
(a 3840x2160 frame is 25 MB): the slots keep their outputs on the device (`DeviceOutputSlot`),
the pipeline stitches the tiles there (`service/pipelines/superres.py`), and only the encoded
bytes are downloaded:

- JPEG: nvJPEG through `torchvision.io.encode_jpeg` on CUDA tensors (4:4:4 chroma). Only about
  1-2 MB per 4K frame cross the bus, and no CPU core spends 30 ms in libjpeg.
- PNG with a whole-image row filter (`none`, `sub`, `up`): the filter runs on the GPU, the
  filtered rows are downloaded (the same bytes as the pixels, no host pass over them) and ISA-L
  deflates them on the CPU (`service/media/png.py`).

nvJPEG's encoder in torchvision runs on its own stream and does not wait for the caller's, so
every function here synchronises the current stream before handing a tensor over, and before
dropping tensors that other streams (the slots') may reuse. torch is imported lazily: this
module is imported by servers without it.
"""

from __future__ import annotations

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
_nvjpeg_state: dict[str, str | None] = {}  # "cuda" -> None (works) or why it does not


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
            else:
                log.info("JPEG answers of GPU models are encoded on the GPU (nvJPEG)")
        return _nvjpeg_state["cuda"]


def _probe_nvjpeg() -> str | None:
    try:
        import torch
        from torchvision.io import encode_jpeg

        if not torch.cuda.is_available():
            return "no CUDA device"
        sample = torch.zeros((3, 16, 16), dtype=torch.uint8, device="cuda")
        encoded = encode_jpeg(sample, quality=90)
        assert isinstance(encoded, torch.Tensor) and encoded.numel() > 0
    except Exception as exc:  # ImportError, torchvision without nvJPEG, a driver problem
        return f"nvJPEG through torchvision is not usable: {type(exc).__name__}: {exc}"
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
    if options.format == "jpeg" and rgb.device.type == "cuda" and nvjpeg_problem() is None:
        return _nvjpeg(rgb, options.quality or 90)
    return encode(_download(rgb), None, False, options)  # any other case: the host encoders


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


def _nvjpeg(rgb: torch.Tensor, quality: int) -> bytes:
    import torch
    from torchvision.io import encode_jpeg

    chw = rgb.permute(2, 0, 1).contiguous()
    torch.cuda.current_stream(rgb.device).synchronize()  # nvJPEG's stream does not wait for ours
    encoded = encode_jpeg(chw, quality=quality)
    assert isinstance(encoded, torch.Tensor)
    data = encoded.cpu().numpy().tobytes()  # synchronous: nvJPEG is done with `chw` when this returns
    return data


def _download(tensor: torch.Tensor) -> np.ndarray:
    """A device tensor on the host (through pinned memory on CUDA), after the copy finished."""
    import torch

    if tensor.device.type != "cuda":
        return np.asarray(tensor.contiguous().numpy())
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return np.asarray(host.numpy())

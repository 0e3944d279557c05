"""uint8 NHWC RGB pixels to and from a model's image tensors, on the CPU with numpy.

Tensors of `kind = "tensor"` (detection outputs, an interpolation time step) are not pixels: they
pass through unconverted (inputs are only cast to the declared dtype).
"""

from __future__ import annotations

import numpy as np

from service.repository.config import ImageTensor

_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


def pixels_to_tensor(batch: np.ndarray, spec: ImageTensor) -> np.ndarray:
    """uint8 NHWC RGB batch -> the contiguous tensor `spec` describes (a plain tensor: cast only)."""
    if spec.kind == "tensor":
        return np.ascontiguousarray(batch, dtype=_NUMPY_DTYPES[spec.dtype])
    x = batch[..., ::-1] if spec.channel_order == "BGR" else batch
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    low, high = spec.value_range
    if spec.dtype == "uint8" and (low, high) == (0.0, 255.0):
        return np.ascontiguousarray(x)
    tensor = np.multiply(x, np.float32((high - low) / 255.0), dtype=np.float32)
    if low:
        tensor += np.float32(low)
    return np.ascontiguousarray(tensor, dtype=_NUMPY_DTYPES[spec.dtype])


def tensor_to_pixels(tensor: np.ndarray, spec: ImageTensor) -> np.ndarray:
    """The model's output tensor -> uint8 NHWC RGB batch (clipped and rounded); a plain tensor as is."""
    if spec.kind == "tensor":
        return np.ascontiguousarray(tensor)
    x = tensor.transpose(0, 2, 3, 1) if spec.layout == "NCHW" else tensor
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    low, high = spec.value_range
    if x.dtype != np.uint8 or (low, high) != (0.0, 255.0):
        scaled = np.subtract(x, np.float32(low), dtype=np.float32)
        scaled *= np.float32(255.0 / (high - low))
        scaled += np.float32(0.5)
        np.clip(scaled, 0.0, 255.0, out=scaled)
        x = scaled.astype(np.uint8)
    return np.ascontiguousarray(x)

"""uint8 NHWC RGB pixels to and from a model's tensors, on the device with torch.

The same arithmetic as `service/runtimes/tensors.py` (the numpy version the CPU runtime uses), so
that a GPU slot and the CPU slot agree to rounding: input `x * (high - low) / 255 + low` in
float32, cast to the model's dtype; output `(y - low) * 255 / (high - low) + 0.5`, clipped to
[0, 255] and truncated. `kind = "tensor"` inputs and outputs are only cast.

`PixelFormat` is a plain frozen dataclass rather than the pydantic `ImageTensor` so that
`torch.compile` reads its fields as constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from service.repository.config import ImageTensor

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "uint8": torch.uint8}


@dataclass(frozen=True)
class PixelFormat:
    """One model input or output as the conversion needs it."""

    image: bool
    nchw: bool
    bgr: bool
    low: float
    high: float
    dtype: torch.dtype  # declared dtype
    feed: torch.dtype  # what the model is fed / produces: the compute dtype for float tensors

    @classmethod
    def of(cls, spec: ImageTensor, compute: torch.dtype) -> PixelFormat:
        declared = TORCH_DTYPES[spec.dtype]
        low, high = spec.value_range
        return cls(
            image=spec.kind == "image",
            nchw=spec.layout == "NCHW",
            bgr=spec.channel_order == "BGR",
            low=low,
            high=high,
            dtype=declared,
            feed=declared if declared == torch.uint8 else compute,
        )

    @property
    def raw_pixels(self) -> bool:
        """The model takes/produces uint8 0..255 itself: no arithmetic, only layout."""
        return self.dtype == torch.uint8 and (self.low, self.high) == (0.0, 255.0)


def pixels_to_model(batch: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """uint8 NHWC RGB batch on the device -> the model's input (NCHW is a channels_last view)."""
    if not fmt.image:
        return batch.to(fmt.feed)
    x = batch.flip(-1) if fmt.bgr else batch
    if fmt.nchw:
        x = x.permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: channels_last, no copy
    if fmt.raw_pixels:
        return x
    scaled = x.to(torch.float32).mul_((fmt.high - fmt.low) / 255.0)  # uint8 -> float32 is a new tensor
    if fmt.low:
        scaled.add_(fmt.low)
    return scaled.to(fmt.feed)


def model_to_pixels(y: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """The model's output on the device -> contiguous uint8 NHWC RGB (a tensor output: its declared dtype)."""
    if not fmt.image:
        return y.to(fmt.dtype)
    x = y.permute(0, 2, 3, 1) if fmt.nchw else y
    if fmt.bgr:
        x = x.flip(-1)
    if x.dtype != torch.uint8 or not fmt.raw_pixels:
        scaled = x.to(torch.float32, copy=True)  # our own copy: the in-place ops below touch only it
        if fmt.low:
            scaled.sub_(fmt.low)
        x = scaled.mul_(255.0 / (fmt.high - fmt.low)).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
    return x.contiguous()

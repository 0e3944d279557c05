"""`filters.v1.Image` messages to and from the pipelines' pixels (encoded bytes or raw RGB)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.core import ServingCore
from service.errors import InvalidInput, PayloadTooLarge, Unprocessable
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.media.images import DecodedImage, EncodeOptions, OutputFormat, PngFilter, decode, encode, probe
from service.timing import StageTimer

_PNG_FILTERS: dict[int, PngFilter] = {
    pb.PNG_FILTER_UNSPECIFIED: "up",
    pb.PNG_FILTER_UP: "up",
    pb.PNG_FILTER_SUB: "sub",
    pb.PNG_FILTER_NONE: "none",
    pb.PNG_FILTER_PAETH: "paeth",
    pb.PNG_FILTER_ADAPTIVE: "adaptive",
}
_FORMATS: dict[int, OutputFormat] = {
    pb.IMAGE_FORMAT_PNG: "png",
    pb.IMAGE_FORMAT_JPEG: "jpeg",
    pb.IMAGE_FORMAT_WEBP: "webp",
}


@dataclass(frozen=True)
class OutputPlan:
    """How to answer: raw pixels, or encoded with `options`."""

    raw: bool
    options: EncodeOptions


def output_plan(output: pb.OutputOptions, image: pb.Image) -> OutputPlan:
    """Validate the requested output; unspecified means the input's kind (raw, else PNG)."""
    fmt = output.format
    if fmt == pb.IMAGE_FORMAT_RAW or (fmt == pb.IMAGE_FORMAT_UNSPECIFIED and image.WhichOneof("data") == "raw"):
        return OutputPlan(True, EncodeOptions())
    if fmt != pb.IMAGE_FORMAT_UNSPECIFIED and fmt not in _FORMATS:
        raise Unprocessable(f"output.format {fmt} is not an ImageFormat this server knows (1-4)")
    name = _FORMATS.get(fmt, "png")
    quality = output.quality if output.HasField("quality") else None
    if quality is not None and name == "png" and quality > 9:
        raise Unprocessable(f"for png, output.quality is the zlib level 0-9, got {quality}")
    if quality is not None and name != "png" and not 1 <= quality <= 100:
        raise Unprocessable(f"for {name}, output.quality is 1-100, got {quality}")
    if output.png_filter not in _PNG_FILTERS:
        raise Unprocessable(f"output.png_filter {output.png_filter} is not a PngFilter this server knows (0-5)")
    return OutputPlan(False, EncodeOptions(name, quality, _PNG_FILTERS[output.png_filter]))


async def decoded_input(core: ServingCore, image: pb.Image, timer: StageTimer) -> DecodedImage:
    """The upright 8-bit pixels of `image`, decoded on the codec pool if it is encoded."""
    limits = core.settings.limits
    kind = image.WhichOneof("data")
    if kind == "raw":
        return raw_pixels(image.raw, limits.max_input_pixels)
    if kind != "encoded" or not image.encoded:
        raise InvalidInput("the request has no image: set image.encoded (file bytes) or image.raw (RGB pixels)")
    data = image.encoded
    if len(data) > limits.max_body_bytes:
        raise PayloadTooLarge(f"the encoded image is {len(data)} bytes; the limit is {limits.max_body_bytes}")
    with timer.measure("decode"):
        header = probe(data, limits.max_input_pixels)
        return await core.offload(decode, data, header)


def raw_pixels(raw: pb.RawImage, max_pixels: int) -> DecodedImage:
    """Check a raw image's size against its bytes and the pixel limit, and view it as HxWx3."""
    width, height = raw.width, raw.height
    if width < 1 or height < 1:
        raise InvalidInput(f"image.raw is {width}x{height}; set its width and height (both at least 1)")
    if width * height > max_pixels:
        raise PayloadTooLarge(f"the image is {width}x{height} ({width * height} pixels); the limit is {max_pixels}")
    expected = width * height * 3
    if len(raw.rgb) != expected:
        raise InvalidInput(
            f"image.raw is {width}x{height} RGB, which is {expected} bytes, but image.raw.rgb has {len(raw.rgb)}"
        )
    rgb = np.frombuffer(raw.rgb, np.uint8).reshape(height, width, 3)
    return DecodedImage(rgb=rgb, alpha=None, grayscale=False, source_bit_depth=8)


async def output_image(core: ServingCore, image: DecodedImage, plan: OutputPlan, timer: StageTimer) -> pb.Image:
    """`image` as the requested output: raw RGB bytes, or encoded on the codec pool."""
    with timer.measure("encode"):
        if plan.raw:
            rgb = np.ascontiguousarray(image.rgb, np.uint8)
            return pb.Image(raw=pb.RawImage(width=image.width, height=image.height, rgb=rgb.tobytes()))
        data = await core.offload(encode, image.rgb, image.alpha, image.grayscale, plan.options)
        return pb.Image(encoded=data)

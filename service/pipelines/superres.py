"""Super-resolution: tile the image, run the tiles through the model's batcher, stitch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import PayloadTooLarge, Unprocessable
from service.media import device, device_png
from service.media.images import (
    CONTENT_TYPES,
    DecodedImage,
    EncodeOptions,
    ImageHeader,
    decode,
    encode,
    probe,
    upscale_alpha,
)
from service.media.png_rows import filtered_rows
from service.pipelines.tiling import Tile, cut, plan_tiles, stitch, stitch_into, whole_image
from service.scheduling.records import BatchTiming, RequestTicket
from service.timing import StageTimer


@dataclass
class Upscaled:
    """The upscaled image and where its time went."""

    image: DecodedImage
    timing: BatchTiming


def tile_size_for(served: ServedModel, override: int | None) -> int:
    """The tile side to use, validating a per-request override."""
    tiling = served.config.tiling
    if override is None:
        return tiling.tile_size
    if tiling.fixed_shape and override != tiling.tile_size:
        raise Unprocessable(f"model '{served.name}' runs only {tiling.tile_size}-pixel tiles; omit 'tile'")
    if override <= 2 * tiling.overlap:
        raise Unprocessable(
            f"tile {override} is too small for model '{served.name}': it needs more than twice its overlap "
            f"of {tiling.overlap} pixels, so at least {2 * tiling.overlap + 1}"
        )
    return override


def _tiled_items(
    core: ServingCore, served: ServedModel, image: DecodedImage, tile: int | None
) -> tuple[list[Tile], list[tuple[np.ndarray, ...]]]:
    """Check the output size against the limit; the tiles of `image` and their pixels."""
    scale = served.config.scale
    out_pixels = image.width * image.height * scale * scale
    if out_pixels > core.settings.limits.max_output_pixels:
        raise PayloadTooLarge(
            f"the x{scale} result of a {image.width}x{image.height} image has {out_pixels} pixels; "
            f"the limit is {core.settings.limits.max_output_pixels}"
        )
    tiling = served.config.tiling
    side = tile_size_for(served, tile)
    tiles = plan_tiles(image.height, image.width, side, tiling.overlap)
    fixed = side if tiling.fixed_shape else None
    return tiles, [(cut(image.rgb, t, tiling.size_multiple, fixed),) for t in tiles]


async def upscale(
    core: ServingCore, served: ServedModel, image: DecodedImage, tile: int | None, ticket: RequestTicket
) -> Upscaled:
    """Run `image` through the superres model `served`, in tiles batched with other requests."""
    scale = served.config.scale
    tiles, items = _tiled_items(core, served, image, tile)
    results, timing = await served.scheduler.run(items, ticket)
    rgb = await core.offload(stitch, [r[0] for r in results], tiles, image.height, image.width, scale)
    alpha = None
    if image.alpha is not None:
        alpha = await core.offload(upscale_alpha, image.alpha, image.width * scale, image.height * scale)
    return Upscaled(DecodedImage(np.asarray(rgb), alpha, image.grayscale, image.source_bit_depth), timing)


async def upscale_on_device(
    core: ServingCore, served: ServedModel, image: DecodedImage, tile: int | None, ticket: RequestTicket
) -> Any:
    """`upscale` for plain RGB whose result stays on the GPU: an HxWx3 uint8 tensor there (or a
    numpy array, from a slot that could not keep its outputs on the device)."""
    tiles, items = _tiled_items(core, served, image, tile)
    results, _ = await served.scheduler.run(items, ticket, on_device=True)
    outputs = [r[0] for r in results]
    scale = served.config.scale
    if isinstance(outputs[0], np.ndarray):
        return await core.offload(stitch, outputs, tiles, image.height, image.width, scale)
    if whole_image(outputs, tiles, image.height, image.width, scale):
        return outputs[0]  # one tile is the image: no hop to the codec pool (a video frame's usual case)
    return await core.offload(stitch_on_device, outputs, tiles, image.height, image.width, scale)


@dataclass
class EncodedImage:
    """An answer ready to send: the bytes, their media type, and the stage timings."""

    data: bytes
    content_type: str
    timer: StageTimer


async def superres_bytes(
    core: ServingCore,
    served: ServedModel,
    data: bytes,
    options: EncodeOptions,
    tile: int | None,
    ticket: RequestTicket,
    timer: StageTimer,
) -> EncodedImage:
    """Encoded image in, encoded image out: what every front end calls for one superres request."""
    with timer.measure("decode"):
        header = probe(data, core.settings.limits.max_input_pixels)
        image = await decode_input(core, served, data, header)
    body = await upscale_encoded(core, served, image, options, tile, ticket, timer)
    return EncodedImage(body, CONTENT_TYPES[options.format], timer)


async def decode_input(core: ServingCore, served: ServedModel, data: bytes, header: ImageHeader) -> DecodedImage:
    """The request's image, decoded on the codec pool. For a model on the GPU an 8-bit RGB PNG is
    inflated by ISA-L and unfiltered on the GPU (`device_png`) when FILTERS_GPU_DECODE is on."""
    if header.format == "PNG" and header.orientation == 1 and await _png_on_device(core, served):
        return await core.offload(_decode_png_on_device, data, header)
    return await core.offload(decode, data, header)


async def _png_on_device(core: ServingCore, served: ServedModel) -> bool:
    if not (core.settings.gpu_decode and served.scheduler.pool.outputs_on_device):
        return False
    if not device_png.known():
        await core.offload(device_png.problem)  # once: compiles and checks the kernel
    return device_png.problem() is None


def _decode_png_on_device(data: bytes, header: ImageHeader) -> DecodedImage:
    rows = filtered_rows(data)
    if rows is None:  # palette, grey, alpha, 16-bit, interlaced: the host decoder
        return decode(data, header)
    return DecodedImage(device_png.unfilter(rows), None, False, 8)


async def upscale_encoded(
    core: ServingCore,
    served: ServedModel,
    image: DecodedImage,
    options: EncodeOptions,
    tile: int | None,
    ticket: RequestTicket,
    timer: StageTimer,
) -> bytes:
    """Decoded image in, encoded answer out (`queue`, `compute` and `encode` go to `timer`).

    Where the model runs on the GPU and the format has an encoder there, the tiles stay on the
    device, are stitched and encoded there, and only the encoded bytes are downloaded
    (`service/media/device.py`); otherwise the pixels come to the host and the codec pool encodes.
    """
    if await _encode_on_device(core, served, image, options):
        tiles, items = _tiled_items(core, served, image, tile)
        results, timing = await served.scheduler.run(items, ticket, on_device=True)
        timer.add("queue", timing.queue_s)
        timer.add("compute", timing.compute_s)
        args = ([r[0] for r in results], tiles, image.height, image.width, served.config.scale, options)
        with timer.measure("encode"):
            return await core.offload(stitch_and_encode, *args)
    result = await upscale(core, served, image, tile, ticket)
    timer.add("queue", result.timing.queue_s)
    timer.add("compute", result.timing.compute_s)
    with timer.measure("encode"):
        out = result.image
        return await core.offload(encode, out.rgb, out.alpha, out.grayscale, options)


async def _encode_on_device(
    core: ServingCore, served: ServedModel, image: DecodedImage, options: EncodeOptions
) -> bool:
    """Whether this answer is encoded on the GPU: plain RGB, a GPU model, a format with a GPU encoder."""
    if not (core.settings.gpu_encode and image.alpha is None and not image.grayscale):
        return False
    if not (served.scheduler.pool.outputs_on_device and device.device_encodable(options)):
        return False
    if options.format == "jpeg" and not device.nvjpeg_known():
        await core.offload(device.nvjpeg_problem)  # once: the probe touches the GPU
    return options.format != "jpeg" or device.nvjpeg_problem() is None


def stitch_and_encode(
    outputs: Sequence[Any], tiles: Sequence[Tile], height: int, width: int, scale: int, options: EncodeOptions
) -> bytes:
    """Tile outputs -> encoded image: on the device for device tensors, on the host for numpy arrays
    (from a slot that could not keep its outputs on the device)."""
    if isinstance(outputs[0], np.ndarray):
        return encode(stitch(outputs, tiles, height, width, scale), None, False, options)
    return device.encode_on_device(stitch_on_device(outputs, tiles, height, width, scale), options)


def stitch_on_device(outputs: Sequence[Any], tiles: Sequence[Tile], height: int, width: int, scale: int) -> Any:
    """`tiling.stitch` for torch tensors, on their device (the only tile's output when it is the image)."""
    import torch

    if whole_image(outputs, tiles, height, width, scale):
        return outputs[0]
    first = outputs[0]
    result = torch.empty((height * scale, width * scale, *first.shape[2:]), dtype=first.dtype, device=first.device)
    return stitch_into(result, outputs, tiles, scale)

"""Super-resolution: tile the image, run the tiles through the model's batcher, stitch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import PayloadTooLarge, Unprocessable
from service.media.images import CONTENT_TYPES, DecodedImage, EncodeOptions, decode, encode, probe, upscale_alpha
from service.pipelines.tiling import cut, plan_tiles, stitch
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


async def upscale(
    core: ServingCore, served: ServedModel, image: DecodedImage, tile: int | None, ticket: RequestTicket
) -> Upscaled:
    """Run `image` through the superres model `served`, in tiles batched with other requests."""
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
    items = [(cut(image.rgb, t, tiling.size_multiple, fixed),) for t in tiles]
    results, timing = await served.scheduler.run(items, ticket)
    rgb = await core.offload(stitch, [r[0] for r in results], tiles, image.height, image.width, scale)
    alpha = None
    if image.alpha is not None:
        alpha = await core.offload(upscale_alpha, image.alpha, image.width * scale, image.height * scale)
    return Upscaled(DecodedImage(np.asarray(rgb), alpha, image.grayscale, image.source_bit_depth), timing)


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
        image = await core.offload(decode, data, header)
    result = await upscale(core, served, image, tile, ticket)
    timer.add("queue", result.timing.queue_s)
    timer.add("compute", result.timing.compute_s)
    with timer.measure("encode"):
        out = result.image
        body = await core.offload(encode, out.rgb, out.alpha, out.grayscale, options)
    return EncodedImage(body, CONTENT_TYPES[options.format], timer)

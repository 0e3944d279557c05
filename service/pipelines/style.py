"""Style transfer: the image through an image-to-image style model, same size out.

Style networks normalise with InstanceNorm, whose statistics span the whole input, so a tile does
not give the pixels the whole image would. Images up to the model's `tile_size` per side run
whole (exact); larger ones are cut into tiles with `overlap` pixels of context, which removes
seams from the convolutions but leaves slight tone differences between tiles (docs/filters.md).
Sides are padded up to `size_multiple` (edge pixels repeated) and the result cropped back.
"""

from __future__ import annotations

import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import ModelNotFound
from service.media.images import CONTENT_TYPES, EncodeOptions, decode, encode, probe
from service.pipelines.superres import EncodedImage, tile_size_for
from service.pipelines.tiling import Tile, cut, plan_tiles, stitch
from service.pipelines.video import FrameFilter, VideoFilter
from service.scheduling.records import BatchTiming, RequestTicket
from service.timing import StageTimer


def style_names(core: ServingCore) -> dict[str, str]:
    """Loaded styles: style name -> model name."""
    return {m.config.style.name: m.name for m in core.models.values() if m.config.style is not None}


def style_model(core: ServingCore, style: str | None, model: str | None) -> ServedModel:
    """The model a style request asks for: by model name, by style name, or the only one loaded."""
    if model is not None or style is None:
        if model is None and len(style_names(core)) > 1:
            raise ModelNotFound(f"several styles are loaded, name one (style=NAME): {sorted(style_names(core))}")
        return core.task_model("style", model)
    core.require_ready()
    names = style_names(core)
    if style not in names:
        raise ModelNotFound(f"no style named '{style}' is loaded; loaded styles: {sorted(names)}")
    return core.models[names[style]]


def style_items(
    served: ServedModel, rgb: np.ndarray, tile: int | None
) -> tuple[list[tuple[np.ndarray, ...]], list[Tile]]:
    """The work items of one image and the plan to stitch them (pure geometry)."""
    tiling = served.config.tiling
    side = tile_size_for(served, tile)
    tiles = plan_tiles(rgb.shape[0], rgb.shape[1], side, tiling.overlap)
    fixed = side if tiling.fixed_shape else None
    return [(cut(rgb, t, tiling.size_multiple, fixed),) for t in tiles], tiles


async def stylize(
    core: ServingCore, served: ServedModel, rgb: np.ndarray, tile: int | None, ticket: RequestTicket
) -> tuple[np.ndarray, BatchTiming]:
    """Paint one HxWx3 uint8 RGB image (frames of a video call this too); same size out."""
    items, tiles = style_items(served, rgb, tile)
    results, timing = await served.scheduler.run(items, ticket)
    painted = await core.offload(stitch, [r[0] for r in results], tiles, rgb.shape[0], rgb.shape[1], 1)
    return np.asarray(painted), timing


async def style_bytes(
    core: ServingCore,
    served: ServedModel,
    data: bytes,
    options: EncodeOptions,
    tile: int | None,
    ticket: RequestTicket,
    timer: StageTimer,
) -> EncodedImage:
    """Encoded image in, stylised image out: what every front end calls for one style request.

    Alpha is kept as it was; a grayscale input comes back in colour (the style adds colour)."""
    with timer.measure("decode"):
        header = probe(data, core.settings.limits.max_input_pixels)
        image = await core.offload(decode, data, header)
    painted, timing = await stylize(core, served, image.rgb, tile, ticket)
    timer.add("queue", timing.queue_s)
    timer.add("compute", timing.compute_s)
    with timer.measure("encode"):
        body = await core.offload(encode, painted, image.alpha, False, options)
    return EncodedImage(body, CONTENT_TYPES[options.format], timer)


def style_video(core: ServingCore, served: ServedModel, tile: int | None) -> VideoFilter:
    """Style transfer on video: every frame through the same `stylize()` as an image."""

    def frames(ticket: RequestTicket) -> FrameFilter:
        async def run(rgb: np.ndarray) -> np.ndarray:
            painted, _ = await stylize(core, served, rgb, tile, ticket)
            return painted

        return run

    return VideoFilter(served, frames)

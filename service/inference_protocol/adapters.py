"""How the models of each task appear in the inference protocol: their tensors, and how they run.

Table-driven: `ADAPTERS` maps a task to its adapter. Exposing detection, style or interpolation
models is adding an adapter here that calls that task's pipeline; the protocol core and both front
ends stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import PayloadTooLarge, Unprocessable
from service.inference_protocol.filter_adapters import FILTER_ADAPTERS
from service.inference_protocol.types import ParameterValue, TensorSpec
from service.media.images import DecodedImage
from service.pipelines.superres import upscale
from service.scheduling.records import RequestTicket

MIN_TILE, MAX_TILE = 8, 4096


class TaskAdapter(Protocol):
    """One task's face in the protocol."""

    platform: str

    def inputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        """The tensors a request sends, without a batch dimension."""
        ...

    def outputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        """The tensors an answer holds, without a batch dimension."""
        ...

    def parameters(self, served: ServedModel) -> dict[str, str]:
        """What a client may want to know (shown as the model configuration's parameters)."""
        ...

    async def infer(
        self,
        core: ServingCore,
        served: ServedModel,
        inputs: Mapping[str, np.ndarray],
        parameters: Mapping[str, ParameterValue],
        ticket: RequestTicket,
    ) -> dict[str, np.ndarray]:
        """Run one request: inputs already checked against `inputs()`; one array per output."""
        ...


class SuperresAdapter:
    """`IMAGE` uint8 HWC RGB of any size in, `IMAGE` uint8 HWC RGB out; tiling is done here."""

    platform = "filters_superres"
    image = TensorSpec("IMAGE", "UINT8", (-1, -1, 3))

    def inputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (self.image,)

    def outputs(self, served: ServedModel) -> tuple[TensorSpec, ...]:
        return (self.image,)

    def parameters(self, served: ServedModel) -> dict[str, str]:
        tiling = served.config.tiling
        return {
            "task": "superres",
            "scale": str(served.config.scale),
            "tile_size": str(tiling.tile_size),
            "overlap": str(tiling.overlap),
        }

    async def infer(
        self,
        core: ServingCore,
        served: ServedModel,
        inputs: Mapping[str, np.ndarray],
        parameters: Mapping[str, ParameterValue],
        ticket: RequestTicket,
    ) -> dict[str, np.ndarray]:
        rgb = inputs[self.image.name]
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        limit = core.settings.limits.max_input_pixels
        if height * width > limit:
            raise PayloadTooLarge(f"input 'IMAGE' is {width}x{height} ({width * height} pixels); the limit is {limit}")
        image = DecodedImage(rgb=rgb, alpha=None, grayscale=False, source_bit_depth=8)
        result = await upscale(core, served, image, tile_parameter(parameters), ticket)
        return {self.image.name: np.ascontiguousarray(result.image.rgb)}


def tile_parameter(parameters: Mapping[str, ParameterValue]) -> int | None:
    """The optional `tile` request parameter (tile side in input pixels)."""
    tile = parameters.get("tile")
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, int) or not MIN_TILE <= tile <= MAX_TILE:
        raise Unprocessable(f"parameter 'tile' must be an integer {MIN_TILE}-{MAX_TILE}, got {tile!r}")
    return tile


ADAPTERS: dict[str, TaskAdapter] = {"superres": SuperresAdapter(), **FILTER_ADAPTERS}

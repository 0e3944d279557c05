"""The one batch a model runs before the server reports ready: shaped as its pipeline feeds it."""

from __future__ import annotations

import numpy as np

from service.repository.config import ModelConfig


def input_side(config: ModelConfig) -> tuple[int, int]:
    """Height and width of the images a warm-up run feeds the model."""
    if config.detect is not None:
        width, height = config.detect.input_size
        return height, width
    tiling = config.tiling
    side = -(-tiling.tile_size // tiling.size_multiple) * tiling.size_multiple
    return side, side


def warmup_inputs(config: ModelConfig, seed: int = 0) -> list[np.ndarray]:
    """One item (batch of 1) for every input of `config`: noise images, t = 0.5 for a time step."""
    height, width = input_side(config)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    section = config.interpolate
    step_shape = (1, 1, height, width) if section and section.timestep_shape == "map" else (1, 1, 1, 1)
    return [image if spec.kind == "image" else np.full(step_shape, 0.5, np.float32) for spec in config.inputs]

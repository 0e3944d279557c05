"""The `[gpu]` section of `model.toml`: how GPU runtimes prepare a model (the CPU runtime ignores it).

GPU runtimes are fastest on shapes they prepared at load: TensorRT builds one optimization profile
per tile shape, and the torch runtime compiles (and optionally captures a CUDA graph) per tile
shape and batch size. `prepared_shapes` and `prepared_batch_sizes` say which; `padded_batch`
says which prepared batch size a batch of `n` items runs at.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CompileMode = Literal["default", "max-autotune-no-cudagraphs"]


class GpuOptions(BaseModel):
    """How GPU runtimes prepare the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shapes: list[tuple[int, int]] = Field(
        default_factory=list,
        description="Tile shapes (height, width) to prepare: TensorRT profiles, torch.compile warm-up; "
        "empty: the square tiling.tile_size.",
    )
    batch_sizes: list[int] = Field(
        default_factory=list,
        description="Batch sizes compiled graphs are prepared for; a batch is padded up to the next one; "
        "empty: powers of two below batching.max_batch_size, and max_batch_size.",
    )
    compile: bool = Field(False, description="torch runtime: torch.compile the model, warmed up at load.")
    compile_mode: CompileMode = Field("default", description="torch runtime: torch.compile mode.")
    cuda_graphs: bool = Field(False, description="torch runtime: capture and replay a CUDA graph per prepared shape.")
    workspace_mib: int = Field(4096, ge=16, le=1 << 20, description="TensorRT builder workspace limit in MiB.")
    min_side: int = Field(
        16, ge=1, le=4096, description="TensorRT: smallest tile side a profile takes; smaller tiles are padded."
    )

    @field_validator("shapes")
    @classmethod
    def _positive_shapes(cls, shapes: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for h, w in shapes:
            if not (1 <= h <= 8192 and 1 <= w <= 8192):
                raise ValueError(f"shape ({h}, {w}) must have sides between 1 and 8192")
        return shapes

    @field_validator("batch_sizes")
    @classmethod
    def _positive_batches(cls, sizes: list[int]) -> list[int]:
        if any(not 1 <= b <= 1024 for b in sizes):
            raise ValueError(f"batch sizes must be between 1 and 1024, got {sizes}")
        return sorted(set(sizes))


def prepared_shapes(options: GpuOptions, tile_size: int) -> list[tuple[int, int]]:
    """Tile shapes the GPU runtimes prepare, smallest area first."""
    shapes = options.shapes or [(tile_size, tile_size)]
    return sorted(set(shapes), key=lambda s: (s[0] * s[1], s))


def prepared_batch_sizes(options: GpuOptions, max_batch_size: int) -> list[int]:
    """Batch sizes the GPU runtimes prepare, ascending; the last one is >= `max_batch_size`."""
    if options.batch_sizes:
        return list(options.batch_sizes)
    sizes = [1 << k for k in range(max_batch_size.bit_length()) if 1 << k < max_batch_size]
    return [*sizes, max_batch_size]


def padded_batch(n: int, sizes: list[int]) -> int | None:
    """The smallest prepared size >= `n`, or None when `n` is above every prepared size."""
    index = bisect_left(sizes, n)
    return sizes[index] if index < len(sizes) else None


def batch_chunks(n: int, sizes: list[int]) -> list[tuple[int, int]]:
    """`n` rows as runs of prepared sizes, as (rows, prepared size) pairs: the largest prepared
    size that fits, again for the rest, and the last rows padded up to the smallest size that
    holds them (when they are fewer than the smallest prepared size).

    Padding 5 rows up to a prepared 8 spends 3 rows of GPU time on nothing; 4 + 1 spends none.
    With batch sizes [1, 2, 4, 8]: 5 -> (4, 4), (1, 1); 7 -> (4, 4), (2, 2), (1, 1); 11 -> (8, 8),
    (2, 2), (1, 1). With [4, 8]: 5 -> (4, 4), (1, 4)."""
    chunks: list[tuple[int, int]] = []
    left = n
    while left > 0:
        fitting = [size for size in sizes if size <= left]
        if fitting:
            chunks.append((fitting[-1], fitting[-1]))
            left -= fitting[-1]
        else:
            padded = padded_batch(left, sizes)
            assert padded is not None  # left < every size here
            chunks.append((left, padded))
            left = 0
    return chunks

"""Write the `model.toml` that makes a folder a model-repository entry.

The format is validated by the service (`service/repository/config.py`); this writer emits the
superres subset the bundled and imported models use: one float32 NCHW RGB [0, 1] input named
`input`, the same for `output`, the scale, tiling, batching and instances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "model.toml"


@dataclass(frozen=True)
class SuperResEntry:
    """What differs between super-resolution entries; the rest is the repository's contract."""

    name: str
    description: str
    scale: int
    receptive_radius: int
    onnx_file: str = "model.onnx"
    tile_size: int = 256
    max_batch_size: int = 4
    default: bool = False


def overlap_for(receptive_radius: int) -> int:
    """Tile overlap in input pixels: the receptive-field radius rounded up to a multiple of 8."""
    return max(8, math.ceil(receptive_radius / 8) * 8)


def render_model_toml(entry: SuperResEntry) -> str:
    """The text of `model.toml` for `entry`."""
    tensor = 'layout = "NCHW"\ndtype = "float32"\nvalue_range = [0.0, 1.0]\nchannel_order = "RGB"\n'
    description = entry.description.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'name = "{entry.name}"\ntask = "superres"\ndescription = "{description}"\n\n'
        f'[files]\nonnx = "{entry.onnx_file}"\n\n'
        f'[[inputs]]\nname = "input"\n{tensor}\n'
        f'[[outputs]]\nname = "output"\n{tensor}\n'
        f"[superres]\nscale = {entry.scale}\ndefault = {str(entry.default).lower()}\n\n"
        f"[tiling]\ntile_size = {entry.tile_size}\n"
        f"overlap = {overlap_for(entry.receptive_radius)}"
        f"  # receptive-field radius {entry.receptive_radius} input pixels\n\n"
        f"[batching]\nmax_batch_size = {entry.max_batch_size}\nmax_queue_delay_ms = 2.0\n"
        "max_queued_requests = 64\n\n[instances]\ncount = 1\n"
    )


def write_model_toml(folder: Path, entry: SuperResEntry) -> Path:
    """Write `folder/model.toml` for `entry` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    path.write_text(render_model_toml(entry), encoding="utf-8")
    return path

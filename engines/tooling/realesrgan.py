"""Import a Real-ESRGAN SRVGGNetCompact checkpoint as a ready model-repository entry.

`realesr-animevideov3.pth` (and `realesr-general-x4v3.pth`) hold `{'params': state_dict}` for
`SRVGGNetCompact`; the network's size is read from the tensor shapes, the weights are loaded with
`strict=True`, and the folder gets `model.onnx` (dynamic N/H/W) and `model.toml`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engines.archs import SRVGGNetCompact
from engines.tooling.export import VerifyReport, export_onnx, load_state_dict, verify_onnx
from engines.tooling.model_entry import SuperResEntry, write_model_toml


@dataclass(frozen=True)
class ImportResult:
    """Where the entry was written and how well onnxruntime matches PyTorch."""

    folder: Path
    onnx_path: Path
    config_path: Path
    report: VerifyReport | None


def srvgg_from_state_dict(state: dict[str, torch.Tensor]) -> SRVGGNetCompact:
    """Build the SRVGGNetCompact that `state` was saved from and load it strictly (PReLU only)."""
    conv_ids = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"body\.(\d+)\.bias", k)))
    if not conv_ids or "body.1.weight" not in state:
        raise ValueError("not an SRVGGNetCompact checkpoint with PReLU (no body.N.bias / body.1.weight)")
    first, last = state["body.0.weight"], state[f"body.{conv_ids[-1]}.weight"]
    num_in, num_feat = first.shape[1], first.shape[0]
    num_out = num_in  # the nearest-neighbour residual needs the same channels in and out
    upscale = int(round((last.shape[0] / num_out) ** 0.5))
    model = SRVGGNetCompact(num_in, num_out, num_feat, len(conv_ids) - 2, upscale, "prelu")
    model.load_state_dict(state, strict=True)
    return model.eval()


def import_realesrgan(
    weights: Path, out_dir: Path, name: str, *, check_images: Sequence[np.ndarray] = (), opset: int = 17
) -> ImportResult:
    """Write `out_dir/model.onnx` and `out_dir/model.toml` for the checkpoint `weights`."""
    model = srvgg_from_state_dict(load_state_dict(weights))
    onnx_path = export_onnx(model, out_dir / "model.onnx", opset=opset)
    report = verify_onnx(model, onnx_path, check_images) if check_images else None
    entry = SuperResEntry(
        name=name,
        description=f"Real-ESRGAN compact x{model.upscale} imported from {weights.name} (upstream: BSD-3-Clause)",
        scale=model.upscale,
        receptive_radius=model.receptive_radius,
    )
    config_path = write_model_toml(out_dir, entry)
    return ImportResult(out_dir, onnx_path, config_path, report)


def export_torch_program(weights: Path, path: Path, max_side: int = 4096) -> None:
    """The Real-ESRGAN compact weights as a `torch.export` program with dynamic batch and size
    (what the torch runtime loads from `files.torch`; it compiles better than an ONNX conversion)."""
    module = srvgg_from_state_dict(load_state_dict(weights))
    dims = {
        0: torch.export.Dim("n", max=64),
        2: torch.export.Dim("h", min=2, max=max_side),
        3: torch.export.Dim("w", min=2, max=max_side),
    }
    name = next(iter(module.forward.__code__.co_varnames[1:2]), "x")
    program = torch.export.export(module, (torch.rand(2, 3, 64, 64),), dynamic_shapes={name: dims})
    torch.export.save(program, str(path))

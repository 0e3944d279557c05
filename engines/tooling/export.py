"""Export a PyTorch super-resolution network to ONNX and check the file against PyTorch.

The ONNX contract of every model in the repository: one input `input` and one output `output`,
float32 NCHW RGB in [0, 1] (the output is not clamped; the service clips). Dynamic batch,
height and width by default, or a fixed square tile with a dynamic batch.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from engines.tooling.images import to_nchw

INPUT_NAME = "input"
OUTPUT_NAME = "output"
MIN_OPSET = 17
# onnx 1.23 writes IR 14 by default; onnxruntime 1.31 loads IR <= 13 and older runtimes
# (TensorRT's parser, onnxruntime < 1.20) stop at 10, so files are written with IR <= 10.
MAX_IR_VERSION = 10


@dataclass(frozen=True)
class VerifyReport:
    """Agreement of onnxruntime with PyTorch over a set of images (outputs in [0, 1] units)."""

    max_abs_error: float
    psnr_db: float
    images: int


class _BranchFreePReLU(nn.Module):
    """PReLU as `x + (a - 1) * min(x, 0)`: equal to PReLU up to float rounding (about 1e-7).

    onnxruntime's CPU PRelu kernel is slow on trained networks (per-element branches on signs
    that are hard to predict; it took 40% of sr-x2's time), while Min, Mul and Add are
    vectorised: this form makes sr-x2 about 30% faster on the CPU. GPU runtimes fuse either.
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        slope = prelu.weight.detach()
        self.register_buffer("slope_minus_one", (slope - 1).reshape(-1, 1, 1) if slope.numel() > 1 else slope - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.slope_minus_one * torch.clamp(x, max=0.0)


def branch_free_prelu(model: nn.Module) -> nn.Module:
    """A copy of `model` with every `nn.PReLU` replaced by its branch-free equivalent."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.PReLU):
                setattr(module, child_name, _BranchFreePReLU(child))
    return model


def export_onnx(model: nn.Module, path: Path, *, tile: int | None = None, opset: int = 17) -> Path:
    """Write `model` as ONNX to `path`: dynamic N/H/W, or N dynamic and H = W = `tile`.

    Uses the TorchScript exporter (the dynamo one needs onnxscript) on a copy of `model` in eval
    mode on the CPU whose PReLUs are written branch-free (`branch_free_prelu`), runs
    `onnx.checker.check_model` (with shape inference) and caps the IR version at
    `MAX_IR_VERSION`. Returns `path`.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old: use {MIN_OPSET} or newer")
    model = branch_free_prelu(model.eval().cpu())
    side = tile or 64
    sample = torch.rand(1, 3, side, side)
    axes = {0: "batch"} if tile else {0: "batch", 2: "height", 3: "width"}
    out_axes = {0: "batch"} if tile else {0: "batch", 2: "out_height", 3: "out_width"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated
        torch.onnx.export(
            model,
            (sample,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: out_axes},
            do_constant_folding=True,
        )
    proto = onnx.load(str(path))
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    proto.producer_name = "engines.tooling.export"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def fixed_input_side(path: Path) -> int | None:
    """The fixed tile side of an exported file, or None when height and width are dynamic."""
    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return dims[2].dim_value if dims[2].HasField("dim_value") else None


def cpu_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """An onnxruntime CPU session for `path` (threads=0: onnxruntime's default)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def verify_onnx(model: nn.Module, path: Path, images: Sequence[np.ndarray]) -> VerifyReport:
    """Run PyTorch and onnxruntime on each uint8 HxWx3 RGB image and compare the float outputs.

    Images are centre-cropped to the tile of a fixed-shape file (and must then be at least that
    large). PSNR is over all outputs together, with peak 1.0.
    """
    if not images:
        raise ValueError("verify_onnx needs at least one image")
    model = model.eval().cpu()
    session = cpu_session(path)
    side = fixed_input_side(path)
    worst, squared, count = 0.0, 0.0, 0
    for image in images:
        if side is not None:
            image = _crop_to(image, side)
        batch = to_nchw(image)
        with torch.no_grad():
            expected = model(torch.from_numpy(batch)).numpy()
        (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        diff = actual.astype(np.float64) - expected
        worst = max(worst, float(np.abs(diff).max()))
        squared += float(np.sum(diff**2))
        count += diff.size
    mse = squared / count
    return VerifyReport(worst, math.inf if mse == 0 else -10.0 * math.log10(mse), len(images))


def _crop_to(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h < side or w < side:
        raise ValueError(f"image {w}x{h} is smaller than the fixed tile {side}x{side}")
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Weights from a checkpoint: a plain state dict, or BasicSR's {'params_ema'|'params': ...}."""
    checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(checkpoint).__name__}")
    for key in ("params_ema", "params", "state_dict"):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            return checkpoint[key]
    return checkpoint

"""Export fast-neural-style weights (TransformerMobileNet) as a ready model-repository entry.

    python -m engines.tooling.style_export --weights fnst_mobilenetv2_candy.pth \\
        --out-dir engines/style-candy --name style-candy [--style candy] [--check-image photo.jpg]

writes `model.onnx` (dynamic N/H/W, RGB float32 NCHW 0-255 in and out) and `model.toml` (task
style, sides padded to a multiple of 4, whole images up to `--tile-size` per side) into
`--out-dir`, and checks onnxruntime against PyTorch on an image.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engines.archs.style_mobilenet import TransformerMobileNet
from engines.tooling.export import cpu_session, export_onnx, load_state_dict
from engines.tooling.images import read_rgb

SIZE_MULTIPLE = 4  # two stride-2 stages
RECEPTIVE_RADIUS = 40  # input pixels, rounded up: 9x9 convs, depthwise 3x3s at 1/2 and 1/4 scale


@dataclass(frozen=True)
class StyleExport:
    """What was written, and how far onnxruntime is from PyTorch (0-255 units)."""

    folder: Path
    onnx_path: Path
    config_path: Path
    max_abs_error: float | None


def load_style_model(weights: Path) -> TransformerMobileNet:
    """TransformerMobileNet with `weights` loaded strictly, in eval mode."""
    model = TransformerMobileNet()
    model.load_state_dict(load_state_dict(weights), strict=True)
    return model.eval()


def render_style_toml(name: str, style: str, description: str, tile_size: int) -> str:
    """The `model.toml` of a style entry."""
    tensor = 'layout = "NCHW"\ndtype = "float32"\nvalue_range = [0.0, 255.0]\nchannel_order = "RGB"\n'
    description = description.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'name = "{name}"\ntask = "style"\ndescription = "{description}"\n\n'
        f'[files]\nonnx = "model.onnx"\n\n[[inputs]]\nname = "input"\n{tensor}\n'
        f'[[outputs]]\nname = "output"\n{tensor}\n[style]\nname = "{style}"\n\n'
        "# InstanceNorm: images up to tile_size per side run whole (exact); larger ones run in tiles\n"
        "# whose overlap covers the receptive field (no seams, slight tone changes between tiles)\n"
        f"[tiling]\ntile_size = {tile_size}\noverlap = {2 * RECEPTIVE_RADIUS}\nsize_multiple = {SIZE_MULTIPLE}\n\n"
        "[batching]\nmax_batch_size = 2\nmax_queue_delay_ms = 2.0\nmax_queued_requests = 32\n\n"
        "[instances]\ncount = 1\n"
    )


def check_against_torch(model: TransformerMobileNet, onnx_path: Path, rgb: np.ndarray) -> float:
    """Largest |onnxruntime - PyTorch| on `rgb` (cropped to a multiple of 4), 0-255 units."""
    h, w = rgb.shape[0] // SIZE_MULTIPLE * SIZE_MULTIPLE, rgb.shape[1] // SIZE_MULTIPLE * SIZE_MULTIPLE
    batch = np.ascontiguousarray(rgb[:h, :w].transpose(2, 0, 1)[None].astype(np.float32))
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    (actual,) = cpu_session(onnx_path).run(["output"], {"input": batch})
    return float(np.abs(actual - expected).max())


def export_style(
    weights: Path, out_dir: Path, name: str, style: str | None = None, *, tile_size: int = 1024,
    check_image: np.ndarray | None = None,
) -> StyleExport:  # fmt: skip
    """Write `out_dir/model.onnx` and `out_dir/model.toml` for the style weights `weights`."""
    model = load_style_model(weights)
    with warnings.catch_warnings():
        # InstanceNorm exports with train=True (it normalises by the input's statistics, as wanted)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # InstanceNorm's shape check is static here
        onnx_path = export_onnx(model, out_dir / "model.onnx")
    style = style or name
    description = f"fast neural style '{style}' (TransformerMobileNet) exported from {weights.name}"
    config_path = out_dir / "model.toml"
    config_path.write_text(render_style_toml(name, style, description, tile_size), encoding="utf-8")
    error = None if check_image is None else check_against_torch(model, onnx_path, check_image)
    return StyleExport(out_dir, onnx_path, config_path, error)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m engines.tooling.style_export", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="TransformerMobileNet state dict (.pth)")
    parser.add_argument("--out-dir", type=Path, required=True, help="model folder to write (model.onnx, model.toml)")
    parser.add_argument("--name", required=True, help="model name in the API")
    parser.add_argument("--style", help="style name for POST /v1/style?style= (default: --name)")
    parser.add_argument("--tile-size", type=int, default=1024, help="largest side run whole (default 1024)")
    parser.add_argument("--check-image", type=Path, help="compare onnxruntime with PyTorch on this image")
    args = parser.parse_args(argv)
    image = read_rgb(args.check_image) if args.check_image else None
    result = export_style(
        args.weights, args.out_dir, args.name, args.style, tile_size=args.tile_size, check_image=image
    )
    print(f"wrote {result.onnx_path} and {result.config_path}")
    if result.max_abs_error is not None:
        print(f"onnxruntime vs PyTorch on {args.check_image.name}: max |diff| {result.max_abs_error:.4f} (0-255)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

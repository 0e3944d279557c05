"""The argument parser of `python -m engines` (kept apart from the command bodies in `cli.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engines import cli


def _export(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="export a PyTorch checkpoint to ONNX and check it")
    p.add_argument("--arch", required=True, choices=["srvgg", "rrdbnet"])
    p.add_argument("--weights", required=True, type=Path, help="state dict, or {'params'|'params_ema': ...}")
    p.add_argument("--arch-args", nargs="*", default=[], metavar="KEY=VALUE", help="constructor arguments")
    p.add_argument("--out", required=True, type=Path)
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--tile", type=int, help="fixed square input side (batch stays dynamic)")
    shape.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (default)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--check-images", type=Path, help="folder of images to compare PyTorch and onnxruntime on")
    p.add_argument("--check-crop", type=int, default=128, help="centre crop of each check image")
    p.set_defaults(func=cli._cmd_export)


def _import(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("import-realesrgan", help="make a model-repository entry from a Real-ESRGAN compact .pth")
    p.add_argument("--weights", required=True, type=Path)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--check-images", type=Path)
    p.add_argument("--check-crop", type=int, default=128)
    p.set_defaults(func=cli._cmd_import)


def _train(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train one bundled super-resolution model")
    p.add_argument("--scale", required=True, type=int, choices=[2, 3, 4])
    p.add_argument("--data", required=True, type=Path, help="image folder tree, or a pack from pack-data")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--steps", required=True, type=int, help="total steps (the most, with --time-budget-s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-feat", type=int, default=32)
    p.add_argument("--num-conv", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr-patch", type=int, default=64, help="LR patch side (HR patch = scale x this)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=1000)
    p.add_argument("--eval-data", type=Path, help="folder with Set5/ and Set5_LR_bicubic/")
    p.add_argument("--log-every", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.add_argument("--time-budget-s", type=float, help="fix the step count from the measured rate")
    p.add_argument("--no-export", action="store_true")
    p.set_defaults(func=cli._cmd_train)


def _train_all(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train-all", help="train the bundled models of several scales at once (GPU job)")
    p.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--eval-data", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--max-steps", type=int, default=60000)
    p.add_argument("--budget-s", type=float, required=True, help="time budget of each training process")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cli._cmd_train_all)


def _eval(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="PSNR-Y of repository models vs bicubic, as a Markdown table")
    p.add_argument("--models", nargs="+", required=True, type=Path, help="model folders (with model.toml)")
    p.add_argument("--data", required=True, type=Path, help="folder with Set5/, Set5_LR_bicubic/ and subsets")
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=cli._cmd_eval)


def _pack(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("pack-data", help="pack training images into lossless WebP shards to carry")
    p.add_argument("--src", required=True, type=Path, help="e.g. ../shared/data/sr_train")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--eval-src", type=Path, help="also copy Set5 HR/LR from this folder into OUT/sr")
    p.set_defaults(func=cli._cmd_pack)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m engines", description="Export, import, train and evaluate the models of the repository."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_export, _import, _train, _train_all, _eval, _pack):
        add(sub)
    return parser

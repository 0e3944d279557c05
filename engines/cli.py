"""`python -m engines <command>`: export, import, train, evaluate and pack data for the models."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engines.tooling.images import center_crop, list_images, read_rgb


def parse_arch_args(items: Sequence[str]) -> dict[str, Any]:
    """`["num_feat=32", "act_type=prelu"]` -> `{"num_feat": 32, "act_type": "prelu"}` (ints where they parse)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--arch-args takes key=value, not {item!r}")
        parsed[key] = int(value) if value.lstrip("-").isdigit() else value
    return parsed


def check_images(folder: Path | None, crop: int) -> list:  # type: ignore[type-arg]
    """Centre crops of the images in `folder` (none when `folder` is None)."""
    return [] if folder is None else [center_crop(read_rgb(p), crop) for p in list_images(folder)]


def _cmd_export(args: argparse.Namespace) -> int:
    from engines.archs import build
    from engines.tooling.export import export_onnx, load_state_dict, verify_onnx

    model = build(args.arch, **parse_arch_args(args.arch_args))
    model.load_state_dict(load_state_dict(args.weights), strict=True)
    path = export_onnx(model, args.out, tile=args.tile, opset=args.opset)
    shape = f"tile {args.tile}" if args.tile else "dynamic N/H/W"
    print(f"wrote {path} ({shape}, opset {args.opset})")
    images = check_images(args.check_images, max(args.check_crop, args.tile or 0))
    if images:
        report = verify_onnx(model, path, images)
        print(
            f"onnxruntime vs PyTorch on {report.images} images: max abs error {report.max_abs_error:.3g}, "
            f"PSNR {report.psnr_db:.1f} dB"
        )
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from engines.tooling.realesrgan import import_realesrgan

    result = import_realesrgan(
        args.weights,
        args.out_dir,
        args.name,
        check_images=check_images(args.check_images, args.check_crop),
        opset=args.opset,
    )
    print(f"wrote {result.onnx_path} and {result.config_path}")
    if result.report:
        print(
            f"onnxruntime vs PyTorch on {result.report.images} images: max abs error "
            f"{result.report.max_abs_error:.3g}, PSNR {result.report.psnr_db:.1f} dB"
        )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from engines.training.train import TrainConfig, train

    config = TrainConfig(
        scale=args.scale,
        data=args.data,
        out=args.out,
        steps=args.steps,
        seed=args.seed,
        num_feat=args.num_feat,
        num_conv=args.num_conv,
        batch_size=args.batch_size,
        lr_patch=args.lr_patch,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        eval_data=args.eval_data,
        log_every=args.log_every,
        device=args.device,
        time_budget_s=args.time_budget_s,
        export=not args.no_export,
    )
    train(config)
    return 0


def _cmd_train_all(args: argparse.Namespace) -> int:
    from engines.training.recipes import train_all

    summary = train_all(args.scales, args.data, args.eval_data, args.out, args.max_steps, args.budget_s, args.seed)
    print({k: v for k, v in summary.items() if not k.startswith("x")})
    return 0 if all(code == 0 for code in summary["exit_codes"].values()) else 1  # type: ignore[attr-defined]


def _cmd_eval(args: argparse.Namespace) -> int:
    from engines.tooling.evaluate import evaluate, read_entry, render_markdown

    models = [read_entry(folder) for folder in args.models]
    scores = evaluate(models, args.data)
    command = "python -m engines " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = render_markdown(scores, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    from engines.training.data import find_images, pack_images

    manifest = pack_images(find_images(args.src), args.out)
    if args.eval_src is not None:
        for part in ("Set5", "Set5_LR_bicubic"):
            for source in (args.eval_src / part).rglob("*.png"):
                target = args.out / "sr" / source.relative_to(args.eval_src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"packed {len(manifest)} images into {args.out} ({size / 2**20:.1f} MiB)")
    return 0

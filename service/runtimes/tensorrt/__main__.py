"""`python -m service.runtimes.tensorrt build`: build (or find in the cache) TensorRT engines ahead of serving.

    python -m service.runtimes.tensorrt build --model-dir engines/sr-x4
    python -m service.runtimes.tensorrt build --repository /opt/filters/models --cache /var/cache/filters/engines

Settings come from each model's model.toml (`[gpu]`, `[batching]`, `[tiling]`, `[instances]
precision`), which is what the server builds and loads; `--precision`, `--batch` and `--tiles`
override them for a one-off build (the server will not pick such a plan up unless model.toml
says the same). `add_build_arguments` and `run_build` let another CLI offer the same command.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from service.repository.config import LoadedConfig
from service.repository.loader import load_model_config, scan_repository


def _ints(text: str) -> tuple[int, ...]:
    return tuple(sorted({int(part) for part in text.split(",") if part}))


def _shapes(text: str) -> tuple[tuple[int, int], ...]:
    """'256,960x540' -> ((256, 256), (540, 960)): a square side, or WIDTHxHEIGHT."""
    shapes = set()
    for part in filter(None, text.split(",")):
        width, _, height = part.partition("x")
        shapes.add((int(height or width), int(width)))
    return tuple(sorted(shapes, key=lambda s: (s[0] * s[1], s)))


def add_build_arguments(cli: argparse.ArgumentParser) -> None:
    """The options of the build command."""
    where = cli.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", type=Path, help="one model folder (with model.toml)")
    where.add_argument("--repository", type=Path, help="every model of this repository that may use TensorRT")
    cli.add_argument("--cache", type=Path, help="engine cache folder (FILTERS_ENGINE_CACHE_DIR; default: .engines/)")
    cli.add_argument("--precision", choices=["fp16", "fp32"], help="override [instances] precision")
    cli.add_argument("--batch", type=_ints, help="override the batch sizes, e.g. 1,4,8 (profiles span min..max)")
    cli.add_argument("--tiles", type=_shapes, help="override the tile shapes, e.g. 256,512 or 960x540 (a profile each)")
    cli.add_argument("--workspace-mib", type=int, help="override [gpu] workspace_mib")
    cli.add_argument("--device", type=int, default=0, help="CUDA device to build for (default 0)")
    cli.add_argument("--rebuild", action="store_true", help="build even when the cache holds a valid plan")


def run_build(args: argparse.Namespace) -> int:
    """Build every selected model's engine; prints each plan's path and key."""
    try:
        import tensorrt as trt
    except ImportError:
        print("error: the tensorrt package is not installed", file=sys.stderr)
        return 2
    from service.runtimes.tensorrt.builder import BuildSettings, engine_key, ensure_plan
    from service.runtimes.tensorrt.cuda import device_info

    device = device_info(args.device)
    for model in _selected(args):
        default = BuildSettings.of(model.config)
        overrides = {"precision": args.precision, "batch_sizes": args.batch, "shapes": args.tiles}
        overrides["workspace_mib"] = args.workspace_mib
        settings = replace(default, **{k: v for k, v in overrides.items() if v is not None})
        settings = replace(settings, min_side=min(settings.min_side, *(min(s) for s in settings.shapes)))
        _, paths = ensure_plan(trt, model, device, cache_dir=args.cache, settings=settings, rebuild=args.rebuild)
        print(f"{model.config.name}: {paths.plan}")
        print(json.dumps(engine_key(model, settings, device, trt).as_json(), indent=2))
        if settings != default:
            print(f"note: {model.config.name}: these settings differ from model.toml's, which the server loads")
    return 0


def _selected(args: argparse.Namespace) -> list[LoadedConfig]:
    if args.model_dir is not None:
        return [load_model_config(args.model_dir / "model.toml")]
    models = scan_repository(args.repository)
    return [m for m in models if m.file("onnx") and (m.config.runtimes is None or "tensorrt" in m.config.runtimes)]


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m service.runtimes.tensorrt", description=__doc__.splitlines()[0])
    commands = cli.add_subparsers(dest="command", required=True)
    add_build_arguments(commands.add_parser("build", help="build engines into the engine cache"))
    args = cli.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_build(args)


if __name__ == "__main__":
    sys.exit(main())

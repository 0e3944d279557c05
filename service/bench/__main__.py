"""`python -m service.bench`: closed-loop load against a running server, concurrency sweep, report.

    python -m service.bench --url http://127.0.0.1:8000 --images photos/ --format jpeg \
        --concurrency 1 16 64 --duration 20 --out bench/results --name superres_jpeg
    python -m service.bench --protocol http grpc --grpc-target 127.0.0.1:8001 --images photos/ ...
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

import httpx

from service.bench.loadgen import RunResult, closed_loop
from service.bench.report import machine_description, markdown_table, write_report
from service.bench.targets import grpc_channel, grpc_superres, http_superres

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--images", type=Path, required=True, help="a folder of images or one image file")
    parser.add_argument("--model", help="model name (default: the server's choice for --scale)")
    parser.add_argument("--scale", type=int, help="upscale factor")
    parser.add_argument("--format", default="png", choices=["png", "jpeg", "webp"], help="output format")
    parser.add_argument("--quality", type=int, help="JPEG/WebP quality or PNG level")
    parser.add_argument("--png-filter", choices=["up", "sub", "none", "paeth", "adaptive"], help="PNG row filter")
    parser.add_argument("--protocol", nargs="+", choices=["http", "grpc"], default=["http"], help="targets, in order")
    parser.add_argument("--grpc-target", default="127.0.0.1:8001", help="host:port of the server's gRPC API")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrency levels")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--out", type=Path, help="folder for <name>.json and <name>.md")
    parser.add_argument("--name", default="superres", help="report name")
    return parser


def _bodies(path: Path) -> list[bytes]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise SystemExit(f"no images in {path}")
    return [f.read_bytes() for f in files]


async def _sweep(args: argparse.Namespace, bodies: list[bytes]) -> list[RunResult]:
    params = {"format": args.format}
    for key in ("model", "scale", "quality", "png_filter"):
        if getattr(args, key) is not None:
            params[key] = str(getattr(args, key))
    biggest = max(args.concurrency)
    limits = httpx.Limits(max_connections=biggest, max_keepalive_connections=biggest)
    results = []
    async with httpx.AsyncClient(timeout=600, limits=limits) as client, grpc_channel(args.grpc_target) as channel:
        for protocol in args.protocol:
            if protocol == "grpc":
                send = grpc_superres(channel, bodies, params)
            else:
                send = http_superres(client, args.url, bodies, params, "application/octet-stream")
            if args.warmup > 0:
                await closed_loop("warmup", send, min(biggest, 4), args.warmup)
            for concurrency in args.concurrency:
                result = await closed_loop(f"{protocol} {args.format}", send, concurrency, args.duration)
                print(markdown_table([result]).splitlines()[-1], flush=True)
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results = asyncio.run(_sweep(args, _bodies(args.images)))
    print(markdown_table(results))
    if args.out:
        header = {
            "command": "python -m service.bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": machine_description(),
            "date": dt.date.today().isoformat(),
        }
        for path in write_report(args.out, args.name, header, results):
            print(f"wrote {path}")
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

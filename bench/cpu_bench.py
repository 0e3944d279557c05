"""CPU benchmark: the service end to end against raw `onnxruntime` `session.run` on the same tiles.

Same machine, same run. The raw figure is the ceiling: the model's tiles fed to one session as
fast as it takes them, inputs already converted to float tensors. The service figure includes
everything a client sees: HTTP, PNG decode, tiling, batching, stitching, PNG encode.

    python bench/cpu_bench.py --model sr-x2 --size 640x480 --duration 20 --concurrency 1 8 32

Writes `bench/results/cpu_<model>.md` and `.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.bench.report import machine_description  # noqa: E402
from service.pipelines.tiling import cut, plan_tiles  # noqa: E402
from service.repository.loader import scan_repository  # noqa: E402
from service.runtimes.tensors import pixels_to_tensor  # noqa: E402
from tests.support.live_server import start_server  # noqa: E402


def load_images(folder: Path | None, width: int, height: int, count: int) -> list[np.ndarray]:
    """`count` RGB images of width x height: centre crops of the photos in `folder`, else noise."""
    images: list[np.ndarray] = []
    paths = sorted(folder.glob("*")) if folder and folder.is_dir() else []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        factor = max(width / bgr.shape[1], height / bgr.shape[0])
        if factor > 1:
            bgr = cv2.resize(bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        y, x = (bgr.shape[0] - height) // 2, (bgr.shape[1] - width) // 2
        images.append(cv2.cvtColor(bgr[y : y + height, x : x + width], cv2.COLOR_BGR2RGB))
    rng = np.random.default_rng(0)
    while len(images) < count:
        images.append(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return images[:count]


def raw_onnxruntime(model_dir: Path, images: list[np.ndarray], duration: float) -> dict[str, float]:
    """Tiles/s and images/s of bare `session.run` on the service's own tiles and batch size."""
    (loaded,) = [c for c in scan_repository(model_dir.parent) if c.folder == model_dir]
    config = loaded.config
    tiling = config.tiling
    tiles = [
        cut(img, t, tiling.size_multiple)
        for img in images
        for t in plan_tiles(*img.shape[:2], tiling.tile_size, tiling.overlap)
    ]
    by_shape: dict[tuple[int, ...], list[np.ndarray]] = {}
    for tile in tiles:
        by_shape.setdefault(tile.shape, []).append(tile)
    batch = config.batching.max_batch_size
    feeds = [
        pixels_to_tensor(np.stack(group[i : i + batch]), config.inputs[0])
        for group in by_shape.values()
        for i in range(0, len(group), batch)
    ]
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(str(loaded.file("onnx")), options, providers=["CPUExecutionProvider"])
    name = config.inputs[0].name
    session.run(None, {name: feeds[0]})
    done_tiles, started = 0, time.perf_counter()
    while time.perf_counter() - started < duration:
        for feed in feeds:
            session.run(None, {name: feed})
            done_tiles += feed.shape[0]
    elapsed = time.perf_counter() - started
    per_image = len(tiles) / len(images)
    return {
        "tiles_per_s": done_tiles / elapsed,
        "images_per_s": done_tiles / per_image / elapsed,
        "tiles_per_image": per_image,
    }


async def closed_loop(
    url: str, bodies: list[bytes], concurrency: int, duration: float, params: dict[str, str]
) -> dict[str, float]:
    """`concurrency` clients each sending the next image as soon as the last answer arrived."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def client(index: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        i = index
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += concurrency
            sent = time.perf_counter()
            response = await http.post(
                f"{url}/v1/superres", params=params, content=body, headers={"content-type": "image/png"}
            )
            if response.status_code == 200:
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "images_per_s": len(latencies) / elapsed,
        "p50_ms": pct(0.50) * 1000,
        "p90_ms": pct(0.90) * 1000,
        "p99_ms": pct(0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def machine() -> str:
    return f"{machine_description()}, onnxruntime {ort.__version__}"


def write_tables(
    out: Path, model: str, meta: dict[str, object], raw: dict[str, float], runs: list[dict[str, float]]
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"cpu_{model}.json").write_text(json.dumps({"meta": meta, "raw": raw, "service": runs}, indent=2))
    lines = [
        f"# CPU benchmark: `{model}`, service vs raw onnxruntime",
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {meta['machine']}",
        f"- date: {meta['date']}",
        f"- input: {meta['size']} PNG, output {meta['format']}; {raw['tiles_per_image']:.0f} tiles per image",
        "",
        "| what | concurrency | images/s | ratio to raw | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
        f"| raw `session.run`, same tiles and batch size | - | {raw['images_per_s']:.2f} | 1.00 | | | | |",
    ]
    for run in runs:
        lines.append(
            f"| service `POST /v1/superres` | {run['concurrency']} | {run['images_per_s']:.2f} | "
            f"{run['images_per_s'] / raw['images_per_s']:.2f} | {run['p50_ms']:.0f} | {run['p90_ms']:.0f} | "
            f"{run['p99_ms']:.0f} | {run['errors']} |"
        )
    path = out / f"cpu_{model}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=ROOT / "engines")
    parser.add_argument("--model", default="sr-x2")
    parser.add_argument("--images", type=Path, default=ROOT / ".." / "shared" / "data" / "images")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--format", default="png", choices=["png", "jpeg", "webp"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    images = load_images(args.images, width, height, args.count)
    bodies = [cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes() for img in images]
    raw = raw_onnxruntime(args.repository / args.model, images, args.duration)
    print(f"raw onnxruntime: {raw['images_per_s']:.2f} images/s ({raw['tiles_per_s']:.1f} tiles/s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            args.repository, Path(tmp) / "server.log", env={"FILTERS_MODELS": json.dumps([args.model])}
        )
        try:
            params = {"model": args.model, "format": args.format}
            asyncio.run(closed_loop(server.url, bodies, 2, 3.0, params))  # warm-up
            runs = []
            for concurrency in args.concurrency:
                run = asyncio.run(closed_loop(server.url, bodies, concurrency, args.duration, params))
                print(json.dumps(run), flush=True)
                runs.append(run)
        finally:
            server.stop()
    meta = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine(),
        "date": dt.date.today().isoformat(),
        "size": args.size,
        "format": args.format,
    }
    print(write_tables(args.out, args.model, meta, raw, runs).read_text())


if __name__ == "__main__":
    main()

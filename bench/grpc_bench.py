"""gRPC benchmark: one image per call over HTTP, gRPC and the inference protocol, and frames per
second of a frame stream at several windows against the same frames sent one call at a time.

    python bench/grpc_bench.py --model sr-x2 --size 320x240 --calls 20 --frames 48 --windows 1 4 8

Starts the real server on the model repository (default: the bundled `engines/`), one model
loaded. Writes `bench/results/grpc_<model>.md` and `.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.client import FiltersClient  # noqa: E402
from tests.support.live_server import start_server  # noqa: E402


def frames_of(width: int, height: int, count: int) -> list[np.ndarray]:
    """`count` frames of a real photo panned across (smooth noise if the test data is absent)."""
    photo_path = ROOT.parent / "shared" / "data" / "images" / "chelsea.png"
    bgr = cv2.imread(str(photo_path), cv2.IMREAD_COLOR)
    if bgr is None:
        rng = np.random.default_rng(0)
        bgr = cv2.resize(rng.integers(0, 256, (height // 8, width // 8 + count, 3), dtype=np.uint8), None, fx=8, fy=8)
    bgr = cv2.resize(bgr, (width + count, height))
    return [np.ascontiguousarray(cv2.cvtColor(bgr[:, i : i + width], cv2.COLOR_BGR2RGB)) for i in range(count)]


def latency_ms(call: Callable[[], object], count: int) -> dict[str, float]:
    call()  # warm-up: first run of this shape
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))]}


def unary_table(url: str, target: str, model: str, image: np.ndarray, calls: int) -> dict[str, dict[str, float]]:
    import tritonclient.grpc as triton

    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    http = httpx.Client(timeout=120)
    v2 = triton.InferenceServerClient(target)
    tensor = triton.InferInput("IMAGE", list(image.shape), "UINT8")
    tensor.set_data_from_numpy(image)
    with FiltersClient(target) as client:
        table = {
            "HTTP /v1/superres, PNG in, PNG out": lambda: http.post(
                f"{url}/v1/superres", params={"model": model}, content=png.tobytes()
            ).raise_for_status(),
            "gRPC Superres, PNG in, PNG out": lambda: client.superres(png.tobytes(), model=model, timeout_s=120),
            "gRPC Superres, raw in, raw out": lambda: client.superres(image, model=model, timeout_s=120),
            "gRPC ModelInfer (tritonclient), raw": lambda: v2.infer(model, [tensor]),
        }
        return {name: latency_ms(call, calls) for name, call in table.items()}


def stream_table(target: str, model: str, frames: list[np.ndarray], windows: list[int]) -> dict[str, float]:
    results = {}
    with FiltersClient(target) as client:
        client.superres(frames[0], model=model)  # warm-up
        started = time.perf_counter()
        for frame in frames:
            client.superres(frame, model=model, timeout_s=120)
        results["unary calls one after another"] = len(frames) / (time.perf_counter() - started)
        for window in windows:
            started = time.perf_counter()
            count = sum(1 for _ in client.stream_frames(frames, model=model, max_in_flight=window))
            assert count == len(frames)
            results[f"StreamFrames, max_in_flight {window}"] = len(frames) / (time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=ROOT / "engines")
    parser.add_argument("--model", default="sr-x2")
    parser.add_argument("--size", default="320x240", help="frame size WxH")
    parser.add_argument("--calls", type=int, default=20, help="calls per unary row")
    parser.add_argument("--frames", type=int, default=48, help="frames per stream row")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--note", default="", help="a line of context for the report (load, what to read)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    frames = frames_of(width, height, args.frames)
    log = args.out / f"grpc_{args.model}.server.log"
    args.out.mkdir(parents=True, exist_ok=True)
    server = start_server(args.repository, log, env={"FILTERS_MODELS": json.dumps([args.model])})
    try:
        unary = unary_table(server.url, server.grpc_target, args.model, frames[0], args.calls)
        stream = stream_table(server.grpc_target, args.model, frames, args.windows)
    finally:
        server.stop()
        log.unlink(missing_ok=True)
    write_report(args, unary, stream)


def write_report(args: argparse.Namespace, unary: dict[str, dict[str, float]], stream: dict[str, float]) -> None:
    command = "python bench/grpc_bench.py " + shlex.join(sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs ({platform.processor() or platform.platform()}), CPU only"
    lines = [
        f"# gRPC and the inference protocol: {args.model}, {args.size} frames",
        "",
        f"- command: `{command}`",
        f"- machine: {machine}; date: {dt.date.today().isoformat()}; grpcio {grpc.__version__}",
        *([f"- note: {args.note}"] if args.note else []),
        "",
        "One image per call, sequential (milliseconds, client-measured):",
        "",
        "| path | p50 ms | p90 ms |",
        "|---|---|---|",
        *(f"| {name} | {row['p50_ms']:.1f} | {row['p90_ms']:.1f} |" for name, row in unary.items()),
        "",
        f"{args.frames} raw frames, x{args.model[-1] if args.model[-1].isdigit() else '?'}, one client:",
        "",
        "| path | frames/s |",
        "|---|---|",
        *(f"| {name} | {fps:.2f} |" for name, fps in stream.items()),
        "",
    ]
    (args.out / f"grpc_{args.model}.md").write_text("\n".join(lines))
    (args.out / f"grpc_{args.model}.json").write_text(json.dumps({"unary": unary, "stream": stream}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

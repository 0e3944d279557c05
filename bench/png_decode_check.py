"""PNG input decoding: exactness against libpng (OpenCV) and speed of each path, one call.

    python bench/png_decode_check.py IMAGES_DIR [--threads 1,8,16]

For every PNG in IMAGES_DIR, each path must equal OpenCV's decode exactly:
- `opencv`: cv2.imdecode (libpng + zlib) and the BGR -> RGB conversion (the old host path);
- `host`: `png_decode.decode_rgb_png` (ISA-L inflate, FFmpeg's row filters; the host path now);
- `gpu`: ISA-L inflate + `device_png` unfiltering on the GPU (FILTERS_GPU_DECODE), where usable.
Then each path's images/s with 1 thread and with more threads at once (the cores' contention
shows there). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.media import device_png  # noqa: E402
from service.media.png_decode import decode_rgb_png  # noqa: E402
from service.media.png_rows import filtered_rows  # noqa: E402

Decoder = Callable[[bytes], np.ndarray | None]


def opencv(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def on_gpu(data: bytes) -> np.ndarray:
    rows = filtered_rows(data)
    assert rows is not None
    return device_png.unfilter(rows)


def images_per_s(decoder: Decoder, datas: list[bytes], threads: int, seconds: float = 3.0) -> float:
    """Decodes per second with `threads` threads decoding the images over and over."""
    deadline = time.perf_counter() + seconds

    def loop() -> int:
        done = 0
        while time.perf_counter() < deadline:
            decoder(datas[done % len(datas)])
            done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: loop(), range(threads)))
    return round(total / (time.perf_counter() - started), 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", type=Path)
    parser.add_argument("--threads", default="1,8,16")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    datas = [p.read_bytes() for p in sorted(args.images.glob("*.png"))]
    decoders: dict[str, Decoder] = {"opencv": opencv, "host": decode_rgb_png}
    problem = device_png.problem()
    if problem is None:
        decoders["gpu"] = on_gpu
    result: dict[str, object] = {"images": len(datas), "gpu_problem": problem}
    result["exact"] = {name: all(np.array_equal(fn(d), opencv(d)) for d in datas) for name, fn in decoders.items()}
    result["inflate_only_per_s_1_thread"] = images_per_s(filtered_rows, datas, 1)
    for threads in (int(t) for t in args.threads.split(",")):
        result[f"per_s_{threads}_threads"] = {name: images_per_s(fn, datas, threads) for name, fn in decoders.items()}
    print(json.dumps(result))
    return 0 if all(result["exact"].values()) else 1  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())

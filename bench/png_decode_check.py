"""GPU PNG decoding on the device: exactness against libpng and speed, one call.

    python bench/png_decode_check.py IMAGES_DIR

For every PNG in IMAGES_DIR: the GPU path (ISA-L inflate + `device_png` unfiltering) must equal
OpenCV's decode exactly; then each path's time per image on one thread. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.media import device_png  # noqa: E402
from service.media.png_rows import filtered_rows  # noqa: E402


def per_image_ms(fn: object, datas: list[bytes], rounds: int = 30) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for data in datas:
            fn(data)  # type: ignore[operator]
    return round((time.perf_counter() - started) / (rounds * len(datas)) * 1000, 2)


def main() -> int:
    datas = [p.read_bytes() for p in sorted(Path(sys.argv[1]).glob("*.png"))]
    problem = device_png.problem()
    result: dict[str, object] = {"images": len(datas), "problem": problem}
    if problem is None:

        def on_gpu(data: bytes) -> np.ndarray:
            rows = filtered_rows(data)
            assert rows is not None
            return device_png.unfilter(rows)

        def on_cpu(data: bytes) -> np.ndarray:
            return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

        result["exact"] = all(np.array_equal(on_gpu(d), on_cpu(d)) for d in datas)
        result["gpu_path_ms"] = per_image_ms(on_gpu, datas)
        result["inflate_only_ms"] = per_image_ms(filtered_rows, datas)
        result["libpng_ms"] = per_image_ms(on_cpu, datas)
    print(json.dumps(result))
    return 0 if problem is None and result.get("exact") else 1


if __name__ == "__main__":
    sys.exit(main())

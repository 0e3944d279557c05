"""CPU latency of the bundled super-resolution models (onnxruntime, one whole 640x480 image).

    PYTHONPATH=. python bench/sr_model_latency.py --out bench/results/sr_models_cpu.md

(`PYTHONPATH=.` is not needed once the project is installed, as `make` does.)

Times `session.run` on a random 1x3x480x640 float32 input after one warm-up run; reports the
median of `--repeats` runs and the multiply-accumulates per run (3x3 convolutions only).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

from engines.tooling.evaluate import read_entry
from engines.tooling.export import cpu_session

ROOT = Path(__file__).resolve().parents[1]


def conv_macs_per_pixel(path: Path) -> int:
    """Multiply-accumulates per input pixel of the model's Conv nodes (all at input resolution)."""
    model = onnx.load(str(path))
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    return sum(int(weights[n.input[1]].size) for n in model.graph.node if n.op_type == "Conv")


def time_model(folder: Path, height: int, width: int, repeats: int, threads: int) -> dict[str, float]:
    """Wall seconds per run (median, min), process CPU seconds per run (median) and GMAC per run."""
    entry = read_entry(folder)
    session = cpu_session(entry.onnx_path, threads)
    batch = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    session.run(None, {entry.input_name: batch})
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        session.run(None, {entry.input_name: batch})
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    gmac = conv_macs_per_pixel(entry.onnx_path) * height * width / 1e9
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "cpu_s": statistics.median(cpu_times),
        "gmac": gmac,
    }


def main() -> None:
    """Time every `engines/sr-*` model and write a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/sr_models_cpu.md")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: default)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = [
        "| model | input | output | GMAC (convs) | wall median s | wall min s | CPU s (median) | GMAC/s (wall min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for folder in sorted(ROOT.glob("engines/sr-*")):
        scale = read_entry(folder).scale
        r = time_model(folder, 480, 640, args.repeats, args.threads)
        rows.append(
            f"| {folder.name} | 640x480 | {640 * scale}x{480 * scale} | {r['gmac']:.1f} "
            f"| {r['median_s']:.3f} | {r['min_s']:.3f} | {r['cpu_s']:.3f} | {r['gmac'] / r['min_s']:.0f} |"
        )
    header = (
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, onnxruntime "
        f"{onnxruntime.__version__}, intra-op threads {args.threads or 'default'}, {args.repeats} runs, "
        f"1-minute load average {load:.1f} at the start (other work on the machine slows the runs).\n\n"
    )
    args.out.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    print(header + "\n".join(rows))


if __name__ == "__main__":
    main()

"""What the video pipeline's host steps cost per frame, and how much libx264 slows beside them.

    python bench/video_host_costs.py --source .gpu/big_buck_bunny.mp4 --out $OUT/hc
    python bench/video_host_costs.py --source ../shared/data/video/big_buck_bunny.mp4 --out /tmp/hc --cpu-smoke

The ultrafast encoder alone keeps most of the GPU machine's cores busy, so every core-millisecond
the pipeline spends per frame is taken from it. This measures, in one process:

- the pipeline's host steps one at a time, per frame: CPU time (the process's, all threads) and
  wall time: decoding the 960x540 input with several thread counts, its RGB conversion, and the
  4:2:0 hand-over of a 3840x2160 frame (`video_encode.to_encoder_frame`: on a GPU, converted there
  and downloaded; on the CPU, swscale);
- libx264 (the benchmark's settings, frames in memory) alone, then beside a background load of
  threads that run Python (holding the GIL, which the encoder's feeding thread needs between
  calls), only burn CPU, or only copy memory, at a fixed rate per second: how much of the encoder
  each load costs.

Writes <out>/video_host_costs.md and .json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.video_bench import CRF, make_input  # noqa: E402
from service.media.video import ColorInfo, frame_to_rgb  # noqa: E402
from service.media.video_encode import to_encoder_frame  # noqa: E402

BT709 = ColorInfo(1, 1, 1, 1)


@contextmanager
def measured(into: dict[str, Any], frames: int) -> Iterator[None]:
    """Wall and process CPU time (every thread) of the block, per frame, into `into`."""
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    into.update(
        frames=frames,
        wall_ms=round(wall / frames * 1e3, 3),
        cpu_ms=round(cpu / frames * 1e3, 3),
        fps=round(frames / wall, 1),
        busy_cores=round(cpu / wall, 2),
    )


def decode_costs(clip: Path, thread_counts: list[int]) -> list[dict[str, Any]]:
    rows = []
    for threads in thread_counts:
        row: dict[str, Any] = {"step": f"decode 960x540 H.264, {threads or 'FFmpeg default'} threads"}
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.thread_count = "AUTO", threads
            count = 0
            with measured(row, 1):
                for _ in container.decode(stream):
                    count += 1
            _per_frame(row, count)
        rows.append(row)
    return rows


def _per_frame(row: dict[str, Any], count: int) -> None:
    """`measured` ran for 1 frame: rescale to `count`."""
    wall_s, cpu_s = row["wall_ms"] / 1e3, row["cpu_ms"] / 1e3
    row.update(
        frames=count,
        wall_ms=round(wall_s / count * 1e3, 3),
        cpu_ms=round(cpu_s / count * 1e3, 3),
        fps=round(count / wall_s, 1),
    )


def small_frames(clip: Path, limit: int) -> list[av.VideoFrame]:
    with av.open(str(clip)) as container:
        return [f for _, f in zip(range(limit), container.decode(video=0), strict=False)]


def large_pictures(small: list[av.VideoFrame], scale: int, gpu: bool) -> list[Any]:
    """The model's output stand-in: each frame's RGB resized x`scale` (on the GPU when there is one)."""
    import cv2

    pictures: list[Any] = []
    for frame in small:
        rgb = frame_to_rgb(frame)
        big = cv2.resize(rgb, (rgb.shape[1] * scale, rgb.shape[0] * scale), interpolation=cv2.INTER_LINEAR)
        if gpu:
            import torch

            pictures.append(torch.from_numpy(big).cuda())
        else:
            pictures.append(big)
    return pictures


def handover_costs(pictures: list[Any], thread_counts: list[int]) -> list[dict[str, Any]]:
    """`to_encoder_frame` for every picture, on 1 and more threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    rows = []
    where = "GPU" if not isinstance(pictures[0], np.ndarray) else "CPU"
    height, width = pictures[0].shape[:2]
    for threads in thread_counts:
        row: dict[str, Any] = {"step": f"RGB {width}x{height} on the {where} -> 4:2:0 frame, {threads} threads"}
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda p: to_encoder_frame(p, BT709), pictures[:threads]))  # warm: streams, staging
            with measured(row, len(pictures)):
                list(pool.map(lambda p: to_encoder_frame(p, BT709), pictures))
        rows.append(row)
    return rows


def rgb_costs(small: list[av.VideoFrame]) -> dict[str, Any]:
    row: dict[str, Any] = {"step": f"decoded {small[0].width}x{small[0].height} -> RGB (swscale, 1 thread)"}
    with measured(row, len(small)):
        for frame in small:
            frame_to_rgb(frame)
    return row


class Load:
    """Background threads doing `work` (one unit each call) `rate` times per second in all."""

    def __init__(self, label: str, work: Callable[[], None], rate: float, threads: int) -> None:
        self.label, self._work, self._period = label, work, threads / rate if rate else 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self.done, self._started, self.rate = 0, 0.0, 0.0

    def _run(self) -> None:
        next_at = time.perf_counter()
        while not self._stop.is_set():
            self._work()
            self.done += 1
            if self._period:
                next_at += self._period
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)

    def __enter__(self) -> Load:
        self._started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.rate = self.done / (time.perf_counter() - self._started)


def loads(unit_ms: float) -> list[tuple[str, Callable[[], Load]]]:
    """Loads of the pipeline's kind, each `rate` units per second: Python bytecode (the GIL held
    25 or 50 % of the time), pure CPU without the GIL (hashing a cached buffer), and memory traffic
    (copying 12 MB, a 4:2:0 3840x2160 frame)."""
    block = np.random.default_rng(0).integers(0, 255, 256 * 1024, dtype=np.uint8).tobytes()
    repeats = max(1, round(unit_ms / _hash_ms(block)))
    source = np.ones(12 * 2**20, np.uint8)
    targets = [np.empty_like(source) for _ in range(4)]

    def burn() -> None:
        for _ in range(repeats):
            hashlib.sha256(block).digest()  # releases the GIL, stays in cache

    def copy() -> None:
        np.copyto(targets[threading.get_ident() % 4], source)

    def python() -> None:
        until = time.perf_counter() + 0.001
        while time.perf_counter() < until:  # bytecode: holds the GIL but for the interpreter's switches
            pass

    return [
        ("none", lambda: Load("none", lambda: None, 0, 0)),
        ("Python (holds the GIL), 1 ms x 250/s", lambda: Load("python", python, 250, 4)),
        ("Python (holds the GIL), 1 ms x 500/s", lambda: Load("python", python, 500, 4)),
        (f"CPU, {unit_ms:g} ms x 250/s", lambda: Load("cpu", burn, 250, 4)),
        (f"CPU, {unit_ms:g} ms x 500/s", lambda: Load("cpu", burn, 500, 4)),
        ("copy 12 MB x 250/s", lambda: Load("copy", copy, 250, 4)),
        ("copy 12 MB x 500/s", lambda: Load("copy", copy, 500, 4)),
    ]


def _hash_ms(block: bytes) -> float:
    started = time.perf_counter()
    for _ in range(50):
        hashlib.sha256(block).digest()
    return (time.perf_counter() - started) / 50 * 1e3


def encoder_beside(frames: list[av.VideoFrame], preset: str, unit_ms: float) -> list[dict[str, Any]]:
    from bench.video_bench import _context

    rate = Fraction(24)
    for index, frame in enumerate(frames):
        frame.pts, frame.time_base = index, Fraction(1) / rate
    rows = []
    for label, make in loads(unit_ms):
        row: dict[str, Any] = {"preset": preset, "load": label}
        ctx = _context(preset, frames[0], rate, 0)
        with make() as load, measured(row, len(frames)):
            for frame in frames:
                ctx.encode(frame)
            ctx.encode(None)
        row["load_units_per_s"] = round(load.rate, 1)
        rows.append(row)
    base = rows[0]["fps"]
    for row in rows:
        row["vs_alone"] = f"{row['fps'] / base:.0%}"
    return rows


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(), "pyav": av.__version__}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        keep = ("Model name", "Thread(s) per core", "Core(s) per socket", "Socket(s)", "L3 cache", "NUMA node(s)")
        info.update(
            {
                k.strip(): v.strip()
                for k, _, v in (line.partition(":") for line in text.splitlines())
                if k.strip() in keep
            }
        )
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    except ImportError:
        info["gpu"] = "none"
    return info


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Video host costs: the pipeline's steps per frame, and libx264 beside background loads",
        "",
        f"- command: `{' '.join(result['command'])}`",
        f"- date: {result['date']}",
        f"- machine: {result['machine']}",
        "",
        "| step | frames | wall ms / frame | CPU ms / frame | frames/s | busy cores |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["steps"]:
        lines.append(
            f"| {row['step']} | {row['frames']} | {row['wall_ms']} | {row['cpu_ms']} | {row['fps']} | "
            f"{row.get('busy_cores', '')} |"
        )
    lines += [
        "",
        f"libx264 alone ({result['encoder_frames']} frames of {result['encoder_size']} in memory, crf {CRF}, "
        "frame threads on every core) beside background threads:",
        "",
        "| preset | background load | load done / s | frames/s | vs no load | busy cores |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["encoder"]:
        lines.append(
            f"| {row['preset']} | {row['load']} | {row['load_units_per_s']} | {row['fps']} | {row['vs_alone']} | "
            f"{row['busy_cores']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=480, help="960x540 frames decoded")
    parser.add_argument("--encoder-frames", type=int, default=240, help="3840x2160 frames given to libx264 per run")
    parser.add_argument("--unit-ms", type=float, default=4.0, help="CPU milliseconds of one background unit")
    parser.add_argument("--presets", default="ultrafast")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes: check the script")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    size, scale = ((320, 180), 2) if args.cpu_smoke else ((960, 540), 4)
    frames = min(args.frames, 48) if args.cpu_smoke else args.frames
    encoder_frames = min(args.encoder_frames, 24) if args.cpu_smoke else args.encoder_frames
    result: dict[str, Any] = {
        "command": sys.argv, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine()
    }  # fmt: skip
    clip = Path(tempfile.mkdtemp(prefix="host-costs-")) / "input.mp4"
    make_input(args.source, clip, frames, size)
    cores = os.cpu_count() or 1
    steps = decode_costs(clip, sorted({1, 2, 4, 0}))
    small = small_frames(clip, encoder_frames)
    steps.append(rgb_costs(small))
    gpu = result["machine"]["gpu"] != "none"
    pictures = large_pictures(small, scale, gpu)
    steps += handover_costs(pictures, sorted({1, 4, cores}))
    result["steps"] = steps
    (args.out / "video_host_costs.json").write_text(json.dumps(result, indent=1))
    handed = [to_encoder_frame(p, BT709) for p in pictures]
    del pictures
    result["encoder_frames"], result["encoder_size"] = len(handed), f"{handed[0].width}x{handed[0].height}"
    result["encoder"] = [
        row for preset in args.presets.split(",") for row in encoder_beside(handed, preset, args.unit_ms)
    ]
    (args.out / "video_host_costs.json").write_text(json.dumps(result, indent=1))
    (args.out / "video_host_costs.md").write_text(render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

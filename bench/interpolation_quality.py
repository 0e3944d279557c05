"""Interpolation quality on real video: the frame made between frames t-1 and t+1 against the real
frame t (PSNR), for the classical DIS interpolator, the same without occlusion-aware blending, and
the plain average of the two frames.

    .venv/bin/python bench/interpolation_quality.py [--triplets 20] [--out bench/results/interpolation_quality.md]

Clips: every file in ../shared/data/video (read, never copied). Triplets are spread evenly over
each clip. Writes a markdown table with the command, machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from service.runtimes import classical_interpolation  # noqa: E402
from service.runtimes.classical_interpolation import DisInterpolator  # noqa: E402

VIDEO = (REPO_ROOT / ".." / "shared" / "data" / "video").resolve()
METHODS = ("average", "flow, no occlusion", "flow (default)")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@dataclass
class ClipResult:
    """PSNR per method per triplet, and the seconds the default method took per frame."""

    name: str
    size: str
    frames: int
    scores: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METHODS})
    seconds: list[float] = field(default_factory=list)


def _without_occlusion(interpolator: DisInterpolator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    saved = classical_interpolation.DISAGREE_FROM
    classical_interpolation.DISAGREE_FROM = 1e9  # the occlusion masks never decide
    try:
        return interpolator.interpolate(a, b, 0.5)
    finally:
        classical_interpolation.DISAGREE_FROM = saved


def measure_clip(path: Path, triplets: int) -> ClipResult:
    frames = read_frames(path)
    height, width = frames[0].shape[:2]
    result = ClipResult(path.name, f"{width}x{height}", len(frames))
    interpolator = DisInterpolator()
    methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "average": lambda a, b: ((a.astype(np.uint16) + b + 1) // 2).astype(np.uint8),
        "flow, no occlusion": lambda a, b: _without_occlusion(interpolator, a, b),
    }
    for t in np.linspace(1, len(frames) - 2, triplets).astype(int):
        before, real, after = frames[t - 1], frames[t], frames[t + 1]
        for name, method in methods.items():
            result.scores[name].append(psnr(method(before, after), real))
        started = time.perf_counter()
        made = interpolator.interpolate(before, after, 0.5)
        result.seconds.append(time.perf_counter() - started)
        result.scores["flow (default)"].append(psnr(made, real))
    return result


def render(results: list[ClipResult], command: str) -> str:
    lines = [
        "# Interpolation quality on real video",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, OpenCV {cv2.__version__}, PyAV {av.__version__}  ",
        f"Date: {datetime.date.today().isoformat()}",
        "",
        "The frame made between frames t-1 and t+1 against the real frame t (PSNR, dB, mean over the "
        "triplets; higher is better). `wins` counts triplets where the default beats the average.",
        "",
        "| clip | size | frames | triplets | average | flow, no occlusion | flow (default) | wins | s/frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        means = [np.mean(r.scores[m]) for m in METHODS]
        wins = sum(f > a for f, a in zip(r.scores["flow (default)"], r.scores["average"], strict=True))
        lines.append(
            f"| {r.name} | {r.size} | {r.frames} | {len(r.seconds)} | "
            + " | ".join(f"{m:.2f}" for m in means)
            + f" | {wins}/{len(r.seconds)} | {np.median(r.seconds):.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--triplets", type=int, default=20, help="triplets per clip (default 20)")
    parser.add_argument("--out", type=Path, help="write the markdown table here as well")
    args = parser.parse_args()
    clips = sorted(p for p in VIDEO.iterdir() if p.suffix in (".mp4", ".mkv", ".webm", ".mov"))
    if not clips:
        print(f"no clips in {VIDEO}", file=sys.stderr)
        return 1
    results = [measure_clip(path, args.triplets) for path in clips]
    text = render(results, "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]))
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

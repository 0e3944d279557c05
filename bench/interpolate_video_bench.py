"""Frame-rate multiplication benchmark: `POST /v1/interpolate` with a video, end to end, on the CPU.

    python bench/interpolate_video_bench.py --seconds 2 --factors 2 4 --repeat 3 --out bench/results

For each clip of ../shared/data/video: its first `--seconds` (packets copied, no re-encoding)
through the real server (`python -m service`, the bundled classical DIS interpolator
`engines/interpolate-dis`) at each factor; wall time from the request's start to the last byte
(upload, probe, decode, interpolation, conversions, libx264 `preset=veryfast`, streaming), the
fastest of `--repeat` runs, and the source frames (pairs) and output frames per second of it.
Writes <out>/interpolate_video_cpu.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import av
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.bench.report import machine_description  # noqa: E402
from tests.support.live_server import LiveServer, start_server  # noqa: E402

CLIPS = ("car-detection.mp4", "asl_again.mkv", "big_buck_bunny.mp4")
MEDIA_TYPES = {".mp4": "video/mp4", ".mkv": "video/x-matroska"}


def first_seconds(source: Path, target: Path, seconds: float) -> Path:
    """The first `seconds` of a clip (decoding order), video and audio packets copied unchanged."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        kept = [s for s in src.streams if s.type in ("video", "audio")]
        streams = {s.index: out.add_stream_from_template(s) for s in kept}
        for packet in src.demux(*kept):
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is None or stamp * packet.time_base >= seconds:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return target


def frame_count(data: bytes) -> tuple[int, str]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, f"{stream.codec_context.width}x{stream.codec_context.height}"


def run_one(server: LiveServer, clip: Path, factor: int, repeat: int) -> str:
    body = clip.read_bytes()
    headers = {"Content-Type": MEDIA_TYPES[clip.suffix]}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = httpx.post(
            f"{server.url}/v1/interpolate", params={"factor": factor}, content=body, headers=headers, timeout=1800
        )
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    elapsed = min(times)
    source_frames, size = frame_count(body)
    out_frames, _ = frame_count(response.content)
    assert out_frames == (source_frames - 1) * factor + 1, (out_frames, source_frames, factor)
    pairs = source_frames - 1
    return (
        f"| {clip.stem} | {size} | {factor} | {source_frames} | {out_frames} | {elapsed:.1f} | "
        f"{pairs / elapsed:.2f} | {out_frames / elapsed:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--factors", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the fastest is reported")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "engines" / "interpolate-dis", work / "repository" / "interpolate-dis")
        server = start_server(work / "repository", work / "server.log")
        try:
            for name in CLIPS:
                clip = first_seconds(args.data / name, work / name, args.seconds)
                rows += [run_one(server, clip, factor, args.repeat) for factor in args.factors]
                print(rows[-1], flush=True)
        finally:
            server.stop()
    load = os.getloadavg()[0]
    command = "python bench/interpolate_video_bench.py " + " ".join(sys.argv[1:])
    text = "\n".join(
        [
            "# Frame-rate multiplication on the CPU (classical DIS interpolator)",
            "",
            f"Command: `{command}`  ",
            f"Machine: {machine_description()}, load average {load:.1f} at the end (shared machine)  ",
            f"Date: {dt.date.today().isoformat()}",
            "",
            f"The first {args.seconds:g} s of each clip through `POST /v1/interpolate?factor=N`, end to end "
            f"(wall time from the request to the last byte, fastest of {args.repeat} runs; libx264 veryfast, "
            "default settings: 2 interpolator instances, 8 frames in flight).",
            "",
            "| clip | size | factor | source frames | output frames | seconds | pairs/s | output frames/s |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interpolate_video_cpu.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""How fast the video pipeline can feed an encoder: the real pipeline in-process, its encoder
replaced by a sink that only counts frames, then with more of its stages left out.

    python bench/video_pipeline_ceiling.py --weights .gpu/realesr-animevideov3.pth \
        --source .gpu/big_buck_bunny.mp4 --compile --out $OUT/ceiling
    python bench/video_pipeline_ceiling.py --cpu-smoke --source ../shared/data/video/big_buck_bunny.mp4 --out /tmp/c

`bench/video_bench.py` measures the pipeline with its encoder; when the encoder waits for frames,
this says which stage sets the pace. Each run filters the same 960x540 clip (the benchmark's input)
with the bench's model (Real-ESRGAN compact x4, one tile per frame, batches up to 8) through
`filter_video`, and the writer thread drains the frames instead of encoding them:

- `full`: decode, RGB, model (batcher, slots), 4:2:0 on the GPU and download, handed over;
- `no 4:2:0 hand-over`: the model's output tensor is handed over as it is (no conversion/download);
- `no model`: each frame's RGB is uploaded and enlarged on the GPU (nearest, x4) by one codec-pool
  call instead of the model, then converted and downloaded as in `full`;
- `encoder`: the whole pipeline with libx264 (ultrafast), for the comparison with the server.

Mean batch size and the slots' busy time come from the server's own metrics.
Writes <out>/video_pipeline_ceiling.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.video_bench import NAME, make_input, model_repository  # noqa: E402
from service import metrics  # noqa: E402
from service.core import ServingCore  # noqa: E402
from service.media.video_encode import VideoEncodeOptions  # noqa: E402
from service.pipelines import video as video_pipeline  # noqa: E402
from service.settings import Settings, VideoSettings  # noqa: E402

STAGES = ("full", "no 4:2:0 hand-over", "no model", "encoder")
PROBE_SLEEP_S = 0.001


class GilProbe:
    """A thread that sleeps 1 ms at a time and notes how late it wakes: the OS's wake-up plus the
    wait for the GIL, which it needs back after each sleep (a GIL that is rarely free shows here)."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gil-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            time.sleep(PROBE_SLEEP_S)
            self.late.append(time.perf_counter() - started - PROBE_SLEEP_S)

    def __enter__(self) -> GilProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        late = np.array(self.late or [0.0]) * 1e3
        return {
            "probe_late_ms_p50": round(float(np.percentile(late, 50)), 3),
            "probe_late_ms_p99": round(float(np.percentile(late, 99)), 3),
            "probe_late_ms_mean": round(float(late.mean()), 3),
        }


class _Drain:
    """Stands in for `_VideoRun._write`: takes frames off the channel until the end, counting them."""

    times: list[float] = []

    @staticmethod
    def write(run: Any) -> None:
        try:
            while not isinstance(item := run.to_encode.get_blocking(), video_pipeline._End):
                if isinstance(item, av.VideoFrame):
                    _Drain.times.append(time.perf_counter())
            run.output.put_blocking(video_pipeline.END)
        except video_pipeline.ChannelClosed:
            return


@contextlib.contextmanager
def patched(stage: str) -> Iterator[None]:
    saved = (video_pipeline._VideoRun._write, video_pipeline.to_encoder_frame)
    if stage != "encoder":
        video_pipeline._VideoRun._write = _Drain.write  # type: ignore[method-assign]
    if stage == "no 4:2:0 hand-over":
        video_pipeline.to_encoder_frame = lambda picture, color: av.VideoFrame(16, 16, "yuv420p")
    try:
        yield
    finally:
        video_pipeline._VideoRun._write, video_pipeline.to_encoder_frame = saved  # type: ignore[method-assign]


def enlarge_filter(core: ServingCore, scale: int, device: str) -> Any:
    """The model's stand-in: upload, nearest x`scale`, on a codec-pool thread (no batcher, no slot)."""

    def enlarge(rgb: np.ndarray) -> Any:
        import torch

        tensor = torch.from_numpy(rgb).to(device)
        big = tensor.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
        if device != "cpu":
            torch.cuda.current_stream().synchronize()
        return big if device != "cpu" else big.numpy()

    async def run(rgb: np.ndarray) -> Any:
        return await core.offload(enlarge, rgb)

    return run


def _metric_sum(name: str) -> tuple[float, float]:
    """(sum, count) of a histogram of the bench's model, from the default registry."""
    total = count = 0.0
    for family in metrics.BATCH_SIZE.collect() if name == "batch" else metrics.COMPUTE_SECONDS.collect():
        for sample in family.samples:
            if sample.labels.get("model") != NAME:
                continue
            if sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
    return total, count


async def one_run(core: ServingCore, clip: Path, stage: str, frames: int, device: str) -> dict[str, Any]:
    served = core.model(NAME)
    ticket = core.new_ticket(600)
    if stage == "no model":
        frame_filter = enlarge_filter(core, served.config.scale, device)
    else:
        frame_filter = video_pipeline.superres_frames(core, served, None, ticket)
    batch_before, compute_before = _metric_sum("batch"), _metric_sum("compute")
    _Drain.times = []
    options = VideoEncodeOptions(preset="ultrafast", crf=23)
    started = time.perf_counter()
    size = 0
    with patched(stage), GilProbe() as probe:
        async with contextlib.aclosing(video_pipeline.filter_video(core, frame_filter, clip, options, ticket)) as out:
            async for chunk in out:
                size += len(chunk)
    seconds = time.perf_counter() - started
    batch_after, compute_after = _metric_sum("batch"), _metric_sum("compute")
    batches = batch_after[1] - batch_before[1]
    row: dict[str, Any] = {"stage": stage, "frames": frames, "seconds": round(seconds, 2)}
    row["fps"] = round(frames / seconds, 1)
    if len(_Drain.times) > 2 * 48:  # after the first 48 frames: the steady rate
        steady = _Drain.times[48:]
        row["steady_fps"] = round((len(steady) - 1) / (steady[-1] - steady[0]), 1)
    if batches:
        row["mean_batch"] = round((batch_after[0] - batch_before[0]) / batches, 2)
        row["slot_busy_s"] = round(compute_after[0] - compute_before[0], 2)
    row["bytes"] = size
    row.update(probe.summary())
    return row


async def measure(args: argparse.Namespace, clip: Path, warm: Path, repository: Path, frames: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    models: list[str] = []
    runtime: list[str] = ["onnxruntime"] if args.cpu_smoke else ["torch", "onnxruntime"]
    for in_flight in args.in_flight:
        settings = Settings(
            model_repository=repository,
            runtime_preference=runtime,  # type: ignore[arg-type]
            video=VideoSettings(frames_in_flight=in_flight),
        )
        core = ServingCore(settings)
        await core.start()
        if not core.state.loaded:
            raise RuntimeError(core.state.load_error)
        device = "cpu" if args.cpu_smoke else "cuda"
        models = core.models[NAME].scheduler.pool.descriptions
        try:
            with GilProbe() as probe:
                await asyncio.sleep(1.0)
            rows.append({"stage": "idle (the probe alone)", "in_flight": in_flight, "frames": 0, "seconds": 1.0,
                         "fps": 0, **probe.summary()})  # fmt: skip
            await one_run(core, warm, "full", 48, device)
            for stage in args.stages:
                row = await one_run(core, clip, stage, frames, device)
                row["in_flight"] = in_flight
                print(row, flush=True)
                rows.append(row)
        finally:
            await core.stop()
    return {"rows": rows, "models": models}


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Video pipeline ceiling: frames/s the pipeline hands an encoder that takes them at once",
        "",
        f"- command: `{' '.join(result['command'])}`",
        f"- date: {result['date']}; {os.cpu_count()} CPUs",
        f"- input: {result['input']}; model: {result.get('models')}",
        "",
        "| stage | frames in flight | frames | s | frames/s | steady frames/s (after 48) | mean batch | slots busy s "
        "| GIL probe late ms: p50 / p99 / mean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['stage']} | {row['in_flight']} | {row['frames']} | {row['seconds']} | {row['fps']} | "
            f"{row.get('steady_fps', '')} | {row.get('mean_batch', '')} | {row.get('slot_busy_s', '')} | "
            f"{row['probe_late_ms_p50']} / {row['probe_late_ms_p99']} / {row['probe_late_ms_mean']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=ROOT / ".device" / "realesr-animevideov3.pth")
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=720)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--in-flight", type=lambda s: [int(x) for x in s.split(",")], default=[16])
    parser.add_argument("--stages", type=lambda s: s.split(","), default=list(STAGES))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu-smoke", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    size = (160, 90) if args.cpu_smoke else (960, 540)
    frames = min(args.frames, 60) if args.cpu_smoke else args.frames
    work = Path(tempfile.mkdtemp(prefix="ceiling-"))
    clip, warm = work / "input.mp4", work / "warm.mp4"
    result: dict[str, Any] = {"command": sys.argv, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    result["input"] = make_input(args.source, clip, frames, size)
    make_input(args.source, warm, 48, size)
    repository = model_repository(args, work, size)
    result.update(asyncio.run(measure(args, clip, warm, repository, result["input"]["frames"])))
    (args.out / "video_pipeline_ceiling.json").write_text(json.dumps(result, indent=1))
    (args.out / "video_pipeline_ceiling.md").write_text(render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

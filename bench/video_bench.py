"""Video benchmark: frames/s end to end through the service against the encoder alone, one run.

    python bench/video_bench.py --weights .device/realesr-animevideov3.pth \
        --source .video_bench/big_buck_bunny.mp4 --frames 480 --out $OUT
    python bench/video_bench.py --cpu-smoke --source ../shared/data/video/big_buck_bunny.mp4 --out /tmp/vb

- input: the first `--frames` frames of `--source`, resized to 960x540 and encoded as H.264
  (crf 16), with the source's audio for the same span.
- end to end: the real server (`python -m service`, torch runtime, Real-ESRGAN compact x4
  imported with engines.tooling.realesrgan, one 960x540 tile per frame) answers
  `POST /v1/superres` with the 3840x2160 H.264 video; frames/s = frames / (last byte - request
  start), upload, probe, decode, model, conversions, encode and streaming included. Once with one
  encoder, once with `FILTERS_VIDEO__ENCODER_SEGMENTS` encoders on consecutive GOPs.
- encoder alone: the pipeline's own 4:2:0 frames (one more request to the first server, answered
  losslessly with crf 0, decoded into memory: the same pixels the server's encoder was given),
  then encoded by libx264 with the same settings (preset, crf 23, 2-second GOPs, frame threads on
  every core): the figure the pipeline is compared with; and the same with parallel segments.

`--cpu-smoke` runs it all tiny on the CPU (a test-built ONNX x4 model on onnxruntime) to check the
script before it spends device time. Writes <out>/video_bench.md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.profiling import ThreadWindow, sampled, summary  # noqa: E402
from service.media.video_segments import SegmentEncoders  # noqa: E402
from service.settings import VideoSettings  # noqa: E402
from tests.support.live_server import free_port  # noqa: E402

NAME = "realesr-animevideov3"
PRESETS = ("ultrafast", "veryfast")
CRF = 23
STARTED = time.monotonic()
WINDOWS: list[tuple[float, float]] = []  # --threads-window: (delay, length) in seconds, each


def make_input(source: Path, out: Path, frames: int, size: tuple[int, int]) -> dict[str, Any]:
    """`frames` frames of `source` resized to `size` (w, h), H.264 crf 16, with the audio of that span."""
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        video_in = src.streams.video[0]
        rate = video_in.average_rate or Fraction(24)
        video = dst.add_stream("libx264", rate=rate, options={"crf": "16", "preset": "fast"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio_in = src.streams.audio[0] if src.streams.audio else None
        audio = dst.add_stream_from_template(audio_in) if audio_in is not None else None
        end_s, count = frames / float(rate), 0
        for packet in src.demux(*(s for s in (video_in, audio_in) if s is not None)):
            if packet.stream is audio_in and audio is not None:
                if packet.pts is not None and packet.size and float(packet.pts * packet.time_base) < end_s:
                    packet.stream = audio
                    dst.mux(packet)
                continue
            for frame in packet.decode():
                if count < frames:
                    rgb = cv2.resize(frame.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_CUBIC)
                    new = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    new.pts, count = count, count + 1
                    new.time_base = Fraction(1) / rate
                    dst.mux(video.encode(new))
        dst.mux(video.encode(None))
    return {"frames": count, "size": f"{size[0]}x{size[1]}", "fps": float(rate), "bytes": out.stat().st_size}


def model_repository(args: argparse.Namespace, work: Path, frame: tuple[int, int], cuda_graphs: bool = False) -> Path:
    """One superres x4 model whose single tile is a whole frame (no tiling overhead)."""
    from engines.tooling.model_entry import SuperResEntry, render_model_toml

    folder = work / ("repository-graphs" if cuda_graphs else "repository") / NAME
    if args.cpu_smoke:
        from tests.support.tiny_models import make_sr_onnx

        make_sr_onnx(folder / "model.onnx", 4)
        radius = 2
    else:
        from engines.tooling.realesrgan import export_torch_program, import_realesrgan

        import_realesrgan(args.weights, folder, NAME)
        radius = _receptive_radius(folder)
    entry = SuperResEntry(NAME, "x4 for the video benchmark", 4, radius, tile_size=max(frame), max_batch_size=8)
    text = render_model_toml(entry).replace("max_queued_requests = 64", "max_queued_requests = 512")
    text = text.replace("count = 1", f"count = {args.slots}")
    text += f"\n[gpu]\nshapes = [[{frame[1]}, {frame[0]}]]\nbatch_sizes = [1, 2, 4, 8]\n"
    if not args.cpu_smoke:
        export_torch_program(args.weights, folder / "model.pt2")
        text = text.replace('onnx = "model.onnx"', 'onnx = "model.onnx"\ntorch = "model.pt2"')
        text += f"compile = {'true' if args.compile else 'false'}\n"
        text += "cuda_graphs = true\n" if cuda_graphs else ""
    (folder / "model.toml").write_text(text)
    return folder.parent


def _receptive_radius(folder: Path) -> int:
    match = re.search(r"receptive-field radius (\d+)", (folder / "model.toml").read_text())
    return int(match[1]) if match else 24


class Server:
    """`python -m service` on a loopback port with the given environment."""

    def __init__(self, repository: Path, log_path: Path, env: dict[str, str], timeout_s: float = 240) -> None:
        port = free_port()
        environment = dict(os.environ) | env | {
            "FILTERS_HOST": "127.0.0.1", "FILTERS_PORT": str(port), "FILTERS_GRPC_PORT": str(free_port()),
            "FILTERS_MODEL_REPOSITORY": str(repository), "FILTERS_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        self.url, self.log_path = f"http://127.0.0.1:{port}", log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"server not ready: {log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class GpuSampler:
    """Mean GPU utilisation while a run lasts, from one `nvidia-smi -lms 250` process (one process
    for the whole run: starting nvidia-smi four times a second would itself cost CPU); None without it."""

    def __init__(self) -> None:
        self.values: list[float] = []
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "250"]
        try:
            self._process: subprocess.Popen[str] | None = subprocess.Popen(
                query, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        except OSError:
            self._process = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._process is None or self._process.stdout is None:
            return
        for line in self._process.stdout:
            with contextlib.suppress(ValueError, IndexError):
                self.values.append(float(line.split()[0]))

    def stop(self) -> float | None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
        self._thread.join(10)
        return round(sum(self.values) / len(self.values), 1) if self.values else None


class CpuMeter:
    """Busy CPU cores of the whole machine (/proc/stat) and of one process (its threads', and the
    minor page faults it took) between construction and `read()`; Linux only, else empty."""

    def __init__(self, pid: int | None = None) -> None:
        self._pid = pid
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, float] | None:
        try:
            fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            process = (0.0, 0.0)
            if self._pid is not None:
                stat = Path(f"/proc/{self._pid}/stat").read_text().rsplit(")", 1)[1].split()
                process = (float(stat[11]) + float(stat[12]), float(stat[7]))  # utime + stime; minflt
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), sum(fields) - idle, *process

    def read(self, frames: int = 0) -> dict[str, float]:
        end = self._sample()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return {}
        cpus = os.cpu_count() or 1
        total = end[0] - self._start[0]
        machine = (end[1] - self._start[1]) / total * cpus
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        wall_s = total / cpus / ticks_per_s
        result = {"machine_busy_cores": round(machine, 2)}
        if self._pid is not None:
            result["server_cores"] = round((end[2] - self._start[2]) / ticks_per_s / wall_s, 2)
            if frames:
                result["server_page_faults_per_frame"] = round((end[3] - self._start[3]) / frames)
        return result


def end_to_end(
    server: Server,
    clip: Path,
    preset: str,
    frames: int,
    keep: Path | None,
    fps: float = 24.0,
    fragment_s: float = 2.0,
    crf: int = CRF,
) -> dict[str, Any]:
    """POST the clip, read the streamed answer; frames/s from request start to last byte."""
    gpu = GpuSampler()
    cpu = CpuMeter(server.process.pid)
    windows = [ThreadWindow(server.process.pid, *w) for w in WINDOWS] if frames else []
    batches_before = model_metrics(server.url)
    started = time.perf_counter()
    first, last, size = None, 0.0, 0
    sink = keep.open("wb") if keep else io.BytesIO()
    with httpx.Client(timeout=600, trust_env=False) as client, sink:
        params = {"preset": preset, "crf": str(crf)}
        headers = {"Content-Type": "video/mp4"}
        with client.stream("POST", f"{server.url}/v1/superres", params=params, content=clip.read_bytes(),
                           headers=headers) as answer:  # fmt: skip
            answer.raise_for_status()
            for chunk in answer.iter_raw():
                last = time.perf_counter() - started
                first = first if first is not None else last
                size += len(chunk)
                sink.write(chunk)
    seconds = time.perf_counter() - started
    row = {"preset": preset, "frames": frames, "seconds": round(seconds, 2), "fps": round(frames / seconds, 1)}
    # after the first fragment (`fragment_s` of video: the server's longest fragment) the rest
    # streams: the pipeline's steady rate
    streamed = frames - round(fragment_s * fps)
    steady = streamed / (last - first) if first is not None and last > first and streamed > 0 else None
    row.update(first_byte_s=round(first or 0.0, 2), steady_fps=steady and round(steady, 1), bytes=size)
    row["gpu_util_pct"] = gpu.stop()
    batches = {key: value - batches_before.get(key, 0.0) for key, value in model_metrics(server.url).items()}
    if batches.get("batch_count"):
        row["mean_batch"] = round(batches["batch_sum"] / batches["batch_count"], 2)
        row["slots_busy_s"] = round(batches["compute_sum"], 2)
    row.update(cpu.read(frames))
    if windows:
        row["threads"] = _window_rows(windows)
    return row


def model_metrics(url: str) -> dict[str, float]:
    """The server's batch-size and compute-time sums and counts (`/metrics`), all models together."""
    names = {"filters_batch_size_sum": "batch_sum", "filters_batch_size_count": "batch_count",
             "filters_compute_seconds_sum": "compute_sum"}  # fmt: skip
    found: dict[str, float] = {}
    text = httpx.get(f"{url}/metrics", timeout=10, trust_env=False).text
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            found[names[name]] = found.get(names[name], 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def _window_rows(windows: list[ThreadWindow]) -> list[str]:
    rows: list[str] = []
    for (delay, _), window in zip(WINDOWS, windows, strict=True):
        rows += [f"From {delay:g} s into the run:", "", *window.finish(), ""]
    return rows


def decoded_frames(path: Path, limit: int) -> tuple[list[av.VideoFrame], dict[str, Any]]:
    """The output video's frames as 4:2:0 frames in memory, and what it is."""
    frames: list[av.VideoFrame] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            plain = frame.reformat(format="yuv420p")
            # a decoded frame keeps its picture type (I/P/B), and libx264 obeys it: the encoder
            # alone would skip the frame-type decisions that it makes for the pipeline's frames
            plain.pict_type = PictureType.NONE
            frames.append(plain)
            if len(frames) >= limit:
                break
        info = {"frames": len(frames), "size": f"{frames[0].width}x{frames[0].height}", "codec": stream.codec.name}
    return frames, info


def _context(preset: str, frame: av.VideoFrame, rate: Fraction, threads: int) -> VideoCodecContext:
    ctx = av.CodecContext.create("libx264", "w")
    assert isinstance(ctx, VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = frame.width, frame.height, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1) / rate, rate
    ctx.gop_size = round(float(rate) * 2)
    ctx.options = {"preset": preset, "crf": str(CRF)}
    ctx.thread_count, ctx.thread_type = threads, "AUTO"
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.open()
    return ctx


def encoder_alone(frames: list[av.VideoFrame], preset: str, rate: Fraction, segments: int) -> dict[str, Any]:
    """libx264 on frames already in memory: one encoder on every core, or `segments` in parallel."""
    for index, frame in enumerate(frames):
        frame.pts, frame.time_base = index, Fraction(1) / rate
    cores = os.cpu_count() or 1
    cpu = CpuMeter()
    windows = [ThreadWindow(os.getpid(), *w) for w in WINDOWS]
    started = time.perf_counter()
    marks: dict[int, float] = {}  # when frame 64, 128, 256, ... went in (as the server logs it)
    if segments == 1:
        ctx = _context(preset, frames[0], rate, 0)
        size = 0
        for index, frame in enumerate(frames):
            if index >= 64 and index & (index - 1) == 0:
                marks[index] = round(time.perf_counter() - started, 2)
            size += sum(p.size for p in ctx.encode(frame))
        size += sum(p.size for p in ctx.encode(None))
    else:
        encoders = SegmentEncoders(
            lambda: _context(preset, frames[0], rate, max(1, cores // segments)), segments, round(float(rate) * 2)
        )
        size = sum(p.size for f in frames for p in encoders.submit(f)) + sum(p.size for p in encoders.finish())
    seconds = time.perf_counter() - started
    threads = {"threads": _window_rows(windows)} if windows else {}
    return {"preset": preset, "encoders": segments, "frames": len(frames), "seconds": round(seconds, 2),
            "fps": round(len(frames) / seconds, 1), "bytes": size, **cpu.read(), **threads,
            **({"frame_marks_s": marks} if marks else {})}  # fmt: skip


def meta(args: argparse.Namespace) -> dict[str, Any]:
    gpu = "none"
    try:
        query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
        gpu = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip() or "none"
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "host": platform.node(), "gpu": gpu,
        "cpus": os.cpu_count(), "python": platform.python_version(), "pyav": av.__version__,
        "ffmpeg": ".".join(map(str, av.library_versions["libavcodec"])), "command": " ".join(sys.argv),
    }  # fmt: skip


def run(args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="video-bench-"))
    size = (160, 90) if args.cpu_smoke else (960, 540)
    result: dict[str, Any] = {"meta": meta(args), "e2e": [], "encoder": [], "skipped": []}
    clip, warm = work / "input.mp4", work / "warm.mp4"
    result["input"] = make_input(args.source, clip, args.frames, size)
    make_input(args.source, warm, min(48, args.frames), size)
    frames = result["input"]["frames"]
    repository = model_repository(args, work, size)
    configs = server_configs(args)
    graphs = model_repository(args, work, size, cuda_graphs=True) if any(c.graphs for c in configs) else None
    keep = work / "lossless.mp4"
    for config in configs:
        serve(args, graphs if config.graphs and graphs else repository, config, (clip, warm, keep), result, save)
    rate = Fraction(result["input"]["fps"]).limit_denominator(1001)
    decoded, result["output"] = decoded_frames(keep, frames)
    for segments in sorted({1, args.segments}):
        for preset in args.presets:
            if time.monotonic() - STARTED > args.budget_s:
                result["skipped"].append(f"encoder alone {preset} x{segments}: over the time budget")
                continue
            for _ in range(args.alone_runs):  # the host's speed drifts: the fastest run is the baseline
                result["encoder"].append(encoder_alone(decoded, preset, rate, segments))
                print(result["encoder"][-1], flush=True)
                save(result)
    return result


GOP_S = 2.0  # the server's key frame interval
DEFAULT_FRAGMENT_S = str(VideoSettings().fragment_s)  # FILTERS_VIDEO__FRAGMENT_S unless a variant sets it
GRAPHS_VARIABLE = "BENCH_CUDA_GRAPHS"  # in a --variant: its model replays CUDA graphs


@dataclass(frozen=True)
class ServerConfig:
    """One server of the run: its label, encoders per video, and extra environment."""

    label: str
    segments: int = 1
    env: dict[str, str] = field(default_factory=dict)
    graphs: bool = False  # the model replays CUDA graphs


def server_configs(args: argparse.Namespace) -> list[ServerConfig]:
    """One encoder; each `--variant` (one encoder, its environment); `--segments` encoders."""
    configs = [ServerConfig("1 encoder")]
    for variant in args.variant:
        label, _, assignments = variant.partition(":")
        env = dict(item.split("=", 1) for item in assignments.split(",") if item)
        graphs = env.pop(GRAPHS_VARIABLE, "0") == "1"
        configs.append(ServerConfig(label, 1, env, graphs))
    if args.graphs_variant:
        configs.append(ServerConfig("CUDA graphs", 1, graphs=True))
    if args.segments > 1:
        configs.append(ServerConfig(f"{args.segments} encoders", args.segments))
    return configs


def serve(
    args: argparse.Namespace,
    repository: Path,
    config: ServerConfig,
    clips: tuple[Path, Path, Path],
    result: dict[str, Any],
    save: Callable[[dict[str, Any]], None],
) -> None:
    """One server: a warm-up request, then each preset."""
    clip, warm, keep = clips
    runtime = '["onnxruntime"]' if args.cpu_smoke else '["torch","onnxruntime"]'
    env = {"FILTERS_RUNTIME_PREFERENCE": runtime, "FILTERS_VIDEO__ENCODER_SEGMENTS": str(config.segments),
           "FILTERS_VIDEO__FRAMES_IN_FLIGHT": str(args.frames_in_flight)} | config.env  # fmt: skip
    index = len([k for k in result if k.startswith("server_log")]) + 1
    log = args.out / f"server-{index}.log"
    server = Server(repository, log, env)
    try:
        result["models"] = httpx.get(f"{server.url}/v1/models", trust_env=False).json()["models"]
        try:
            end_to_end(server, warm, "ultrafast", 0, None)  # warm-up: first request, allocator, caches
        except httpx.HTTPError as exc:  # insurance for the one device run: retry without NVDEC/NVENC
            result["skipped"].append(f"hardware codecs failed ({exc!r}); rerun with FILTERS_VIDEO__HARDWARE_CODECS=0")
            server.stop()
            server = Server(repository, log, env | {"FILTERS_VIDEO__HARDWARE_CODECS": "0"})
            end_to_end(server, warm, "ultrafast", 0, None)
        for preset in args.presets:
            if time.monotonic() - STARTED > args.budget_s:
                result["skipped"].append(f"end to end {preset}, {config.label}: over the time budget")
                continue
            profile = args.out / f"profile-{preset}-{index}.txt"
            profiling = args.profile or args.gil
            with sampled(server.process.pid, profile, gil=args.gil) if profiling else contextlib.nullcontext():
                fragment_s = min(float(env.get("FILTERS_VIDEO__FRAGMENT_S", DEFAULT_FRAGMENT_S)) or GOP_S, GOP_S)
                frames, fps = result["input"]["frames"], result["input"]["fps"]
                row = end_to_end(server, clip, preset, frames, None, fps, fragment_s)
            if profiling:
                what = "GIL-holding" if args.gil else "on-CPU"
                result.setdefault("profiles", {})[f"{preset}, {config.label}"] = summary(profile, what=what)
            row.update(encoders=config.segments, server=config.label)
            print(row, flush=True)
            result["e2e"].append(row)
            save(result)
        if index == 1:  # the pipeline's own frames for the encoder alone: a lossless answer (crf 0)
            result["lossless"] = end_to_end(server, clip, "ultrafast", 0, keep, crf=0)
    finally:
        server.stop()
        result[f"server_log_{index}"] = [f"({config.label})", *_log_lines(log)]


def _log_lines(path: Path) -> list[str]:
    """What the server said about its decoder, encoder and runtime."""
    wanted = re.compile(r"NVDEC|nvenc|video (de|en)cod|video filtered|4:2:0|ready on|runtime|encoder thread")
    return [line.split(": ", 1)[-1] for line in path.read_text(errors="replace").splitlines() if wanted.search(line)]


def render(result: dict[str, Any]) -> str:
    m = result["meta"]
    models = ", ".join(f"{x['name']} on {x['runtime']} {x['slots']}" for x in result.get("models", []))
    alone: dict[tuple[str, int], float] = {}  # the fastest run of each: the conservative baseline
    for r in result["encoder"]:
        alone[(r["preset"], r["encoders"])] = max(r["fps"], alone.get((r["preset"], r["encoders"]), 0.0))
    lines = [
        "# Video benchmark: 960x540 -> 3840x2160 (x4), end to end vs the encoder alone", "",
        f"- command: `{m['command']}`", f"- machine: {m['gpu']}; {m['cpus']} CPUs; host {m['host']}",
        f"- date: {m['date']}; Python {m['python']}, PyAV {m['pyav']} (libavcodec {m['ffmpeg']})",
        f"- input: {result['input']}; output: {result.get('output')}",
        f"- the encoder alone's frames: the pipeline's own, from a lossless (crf 0) answer of "
        f"{result.get('lossless', {}).get('bytes')} bytes",
        f"- model: {models}",
        f"- encoder: libx264 crf {CRF}, 2-second GOPs, frame threads on every core",
        "- ratios are against the fastest run of the encoder alone (each is run `--alone-runs` times)", "",
        "| run | preset | encoders | frames | s | frames/s | vs encoder alone (1 enc.) | first byte s "
        "| frames/s after the first fragment | GPU util % | busy CPU cores (machine / server) "
        "| server page faults per frame | mean batch | slots busy s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in result["e2e"]:
        ratio = r["fps"] / alone[(r["preset"], 1)] * 100 if alone.get((r["preset"], 1)) else float("nan")
        lines.append(f"| end to end ({r.get('server', r['encoders'])}) | {r['preset']} | {r['encoders']} "
                     f"| {r['frames']} | {r['seconds']} | {r['fps']} | {ratio:.0f}% | {r['first_byte_s']} "
                     f"| {r.get('steady_fps')} | {r['gpu_util_pct']} "
                     f"| {r.get('machine_busy_cores')} / {r.get('server_cores')} "
                     f"| {r.get('server_page_faults_per_frame')} | {r.get('mean_batch')} "
                     f"| {r.get('slots_busy_s')} |")  # fmt: skip
    for r in result["encoder"]:
        ratio = r["fps"] / alone[(r["preset"], 1)] * 100
        lines.append(f"| encoder alone | {r['preset']} | {r['encoders']} | {r['frames']} | {r['seconds']} "
                     f"| {r['fps']} | {ratio:.0f}% | | | | {r.get('machine_busy_cores')} | | | |")  # fmt: skip
    lines += [f"- skipped: {reason}" for reason in result.get("skipped", [])]
    for r in result["encoder"]:
        if r.get("frame_marks_s"):
            marks = ", ".join(f"frame {k} {v} s" for k, v in r["frame_marks_s"].items())
            lines.append(f"- encoder alone, {r['preset']}: {marks} (server logs: 'frame N at the encoder')")
    for r in (*result["e2e"], *result["encoder"]):
        if r.get("threads"):
            where = f"end to end, {r.get('server', '')}" if "server" in r else "encoder alone"
            lines += ["", f"## CPU by thread: {where}, {r['preset']}, {r['encoders']} encoder(s)", "", *r["threads"]]
    for name, profile in result.get("profiles", {}).items():
        lines += ["", f"## Server profile: end to end, {name} (py-spy)", *profile]
    for key in sorted(k for k in result if k.startswith("server_log")):
        lines += ["", f"Server log ({key}):", "", *[f"    {line}" for line in result[key][:12]]]
    return "\n".join(lines) + "\n"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=ROOT / ".device" / "realesr-animevideov3.pth")
    parser.add_argument("--source", type=Path, required=True, help="a video with audio (big_buck_bunny.mp4)")
    parser.add_argument("--frames", type=int, default=480)
    parser.add_argument("--alone-runs", type=int, default=2, help="runs of the encoder alone per preset")
    parser.add_argument("--segments", type=int, default=4, help="parallel encoders for the stretch runs")
    parser.add_argument("--frames-in-flight", type=int, default=16)
    parser.add_argument("--slots", type=int, default=1, help="model instances (execution slots) on the GPU")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (default mode)")
    parser.add_argument("--graphs-variant", action="store_true", help="one more server whose model replays CUDA graphs")
    parser.add_argument("--profile", action="store_true", help="py-spy the server in the end-to-end runs")
    parser.add_argument("--gil", action="store_true", help="py-spy only the thread holding the GIL (--profile's place)")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="LABEL:ENV=VALUE,...",
        help=(
            "one more one-encoder server with this environment (repeatable), e.g. 'a:FILTERS_X=1,FILTERS_Y=2'; "
            f"{GRAPHS_VARIABLE}=1 serves its model with CUDA graphs"
        ),
    )  # fmt: skip
    parser.add_argument(
        "--threads-window", metavar="DELAY:LENGTH[,...]",
        help="CPU per thread over LENGTH s starting DELAY s into each run (server's, and the encoder alone's)",
    )  # fmt: skip
    parser.add_argument(
        "--presets", type=lambda text: tuple(text.split(",")), default=PRESETS, help="libx264 presets, comma-separated"
    )
    parser.add_argument("--budget-s", type=float, default=400, help="start no run after this many seconds")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny, on the CPU: check the script")
    args = parser.parse_args()
    if args.cpu_smoke:
        args.frames = min(args.frames, 24)
    for window in (args.threads_window or "").split(","):
        if window:
            delay, _, length = window.partition(":")
            WINDOWS.append((float(delay), float(length)))
    return args


def main() -> int:
    args = parse()
    args.out.mkdir(parents=True, exist_ok=True)

    def save(result: dict[str, Any]) -> None:
        (args.out / "video_bench.json").write_text(json.dumps(result, indent=1, default=str))
        (args.out / "video_bench.md").write_text(render(result))

    result = run(args, save)
    save(result)
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Side by side on one GPU: the engine alone, this service, plain FastAPI + PyTorch, LitServe.

    python bench/side_by_side.py --weights .device/realesr-animevideov3.pth --inputs .device/inputs \
        --peers .device/peers --out $OUT

Same model (Real-ESRGAN compact x4, realesr-animevideov3), same 960x540 PNG inputs, same client:
the peers' closed-loop load generator (`loadgen.py`, 8 processes) against every server, JPEG and
PNG answers, concurrency 1, 16 and 64. Sections, each written to <out>/side_by_side.json and .md
as it finishes (a failing section is recorded and the run goes on; `--budget-s` skips what
would not fit):

- engine: the peers' `engine_only.py` (eager batch 1/8, then torch.compile batch 8), no HTTP.
- encoders: one 3840x2160 model output encoded by each encoder, 1 thread and all cores: libpng
  (OpenCV), our PNG writer (up filter + ISA-L), the same with the filter on the GPU, libjpeg
  (OpenCV), nvJPEG (torchvision).
- service: `python -m service` (torch runtime, torch.compile, 2 slots, batch <= 8, GPU encoding),
  with GPU busy fraction, server CPU cores, event-loop lag (GET /healthz latency under load) and
  Server-Timing stages of probe requests.
- fastapi, litserve: the peers' servers, one per output format.

`--cpu-smoke` runs the script tiny on the CPU (onnxruntime server, peers where they start) to
check it before it spends device time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.profiling import sampled, summary  # noqa: E402

NAME = "realesr-x4"


class Run:
    """Results, the clock, where to write."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.perf_counter()
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.work: Path = args.work
        self.work.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, Any] = {"meta": {}, "sections": {}}
        self.concurrency = [int(c) for c in args.concurrency.split(",")]

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.started)

    def save(self) -> None:
        self.results["meta"]["elapsed_s"] = round(time.perf_counter() - self.started, 1)
        (self.out / "side_by_side.json").write_text(json.dumps(self.results, indent=2, default=str))
        try:
            text = markdown(self.results)
        except Exception as exc:  # the JSON is the record
            text = f"report failed: {type(exc).__name__}: {exc}\n"
        (self.out / "side_by_side.md").write_text(text)

    def section(self, name: str, fn: Callable[[Run, list[dict[str, Any]]], None], needs_s: float) -> None:
        entry: dict[str, Any] = {"rows": []}
        self.results["sections"][name] = entry
        if self.left() < needs_s:
            entry["skipped"] = f"{self.left():.0f} s left, needs about {needs_s:.0f}"
            print(f"== {name}: skipped ({entry['skipped']})", flush=True)
            self.save()
            return
        print(f"== {name} ({self.left():.0f} s left)", flush=True)
        started = time.perf_counter()
        try:
            fn(self, entry["rows"])
        except Exception as exc:
            traceback.print_exc()
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["seconds"] = round(time.perf_counter() - started, 1)
        self.save()


def meta(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception as exc:
        info["torch"] = f"unavailable: {exc}"
    smi = shutil.which("nvidia-smi")
    if smi:
        query = [smi, "--query-gpu=name,driver_version,clocks.max.sm,power.limit", "--format=csv,noheader"]
        info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# ---------------------------------------------------------------- the model repository


def prepare_repository(run: Run) -> Path:
    """realesr-x4: ONNX + a torch.export program (the torch runtime loads it), one 960x540 tile."""
    from engines.tooling.realesrgan import export_torch_program, import_realesrgan

    folder = run.work / "repository" / NAME
    import_realesrgan(run.args.weights, folder, NAME)
    toml = folder / "model.toml"
    text = toml.read_text()
    if not run.args.cpu_smoke:
        export_torch_program(run.args.weights, folder / "model.pt2")
        text = text.replace('onnx = "model.onnx"', 'onnx = "model.onnx"\ntorch = "model.pt2"')
    (folder / "model.toml").write_text(_served_toml(text, run))
    from service.repository.loader import load_model_config

    load_model_config(toml)  # fail here, not in the server
    return folder.parent


def _served_toml(text: str, run: Run) -> str:
    """The imported model.toml with the serving settings of this benchmark replaced."""
    import tomllib

    data = tomllib.loads(text)
    height, width = run.args.frame
    batches = [int(b) for b in run.args.service_batches.split(",")]
    data["tiling"]["tile_size"] = max(height, width)  # a 960x540 image is one tile
    data["batching"] = {
        "max_batch_size": max(batches),
        "max_queue_delay_ms": run.args.queue_delay_ms,
        "max_queued_requests": 1024,
    }
    data["instances"] = {"count": run.args.service_slots, "precision": "fp16"}
    data["gpu"] = {
        "shapes": [[height, width]],
        "batch_sizes": batches,
        "compile": not run.args.no_compile,
        "compile_mode": run.args.compile_mode,
        "cuda_graphs": run.args.cuda_graphs,
    }
    return _toml(data)


def _toml(data: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict | list)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += [f"[{key}]", *(f"{k} = {value(v)}" for k, v in table.items())]
        elif isinstance(table, list) and table and isinstance(table[0], dict):
            for item in table:
                lines += [f"[[{key}]]", *(f"{k} = {value(v)}" for k, v in item.items())]
        elif isinstance(table, list):
            lines.insert(0, f"{key} = {value(table)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- engine only and encoders


def engine(run: Run, rows: list[dict[str, Any]]) -> None:
    script = run.args.peers / "engine_only.py"
    h, w = run.args.frame
    for extra in (["--batches", run.args.engine_batches], ["--batches", run.args.engine_batches, "--compile"]):
        cmd = [sys.executable, str(script), str(run.args.weights), "--h", str(h), "--w", str(w), *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(30, run.left() - 200))
        parsed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        rows.extend(parsed)
        if done.returncode != 0 or not parsed:
            rows.append({"command": " ".join(extra), "error": done.stderr[-800:]})
        print(parsed or done.stderr[-800:], flush=True)
        run.save()


def sample_outputs(run: Run, count: int) -> list[Any]:
    """`count` real model outputs (3840x2160 uint8 RGB on the GPU) of the input frames."""
    import cv2
    import torch

    sys.path.insert(0, str(run.args.peers))
    import srmodel  # the peers' definition: the same weights and arithmetic

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = srmodel.load(str(run.args.weights), device=device, half=device == "cuda")
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in _input_paths(run)][:count]
    with torch.inference_mode():
        return [
            srmodel.run_uint8(model, torch.from_numpy(f[None]).to(device), half=device == "cuda")[0] for f in frames
        ]


def encoders(run: Run, rows: list[dict[str, Any]]) -> None:
    import cv2
    import numpy as np
    import torch

    from service.media import device as device_codecs
    from service.media.images import EncodeOptions
    from service.media.png import encode_png, fast_deflate_available

    outputs = sample_outputs(run, 4)
    hosts = [np.ascontiguousarray(o.cpu().numpy()) for o in outputs]
    bgr = [cv2.cvtColor(h, cv2.COLOR_RGB2BGR) for h in hosts]
    cores = os.cpu_count() or 1
    rows.append(
        {
            "what": "setup",
            "shape": list(hosts[0].shape),
            "isal": fast_deflate_available(),
            "nvjpeg": device_codecs.nvjpeg_problem() or "ok",
            "cores": cores,
        }
    )
    libpng = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]  # fmt: skip
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 90]
    gpu_png, gpu_jpeg = EncodeOptions("png", 1, "up"), EncodeOptions("jpeg", 90)

    def on_gpu(options: EncodeOptions) -> Callable[[int], bytes]:
        return lambda i: device_codecs.encode_on_device(outputs[i % 4], options)

    cases: list[tuple[str, Callable[[int], bytes], list[int]]] = [
        ("libpng level 1, RLE + Paeth (OpenCV; the old default)",
         lambda i: cv2.imencode(".png", bgr[i % 4], libpng)[1].tobytes(), [1, cores]),
        ("PNG up + ISA-L level 1 (CPU)", lambda i: encode_png(hosts[i % 4], "up", 1), [1, cores]),
        ("PNG up filter on the GPU + ISA-L level 1", on_gpu(gpu_png), [1, cores]),
        ("libjpeg q90 (OpenCV, 4:2:0)", lambda i: cv2.imencode(".jpg", bgr[i % 4], jpeg)[1].tobytes(), [1, cores]),
        ("nvJPEG q90 (torchvision, 4:4:4)", on_gpu(gpu_jpeg), [1, 4]),
    ]  # fmt: skip
    for label, fn, threads in cases:
        for count in threads:
            rows.append({"what": label, **_throughput(fn, count, run.args.encoder_seconds)})
            print(rows[-1], flush=True)
            run.save()
    outputs.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _throughput(fn: Callable[[int], bytes], threads: int, seconds: float) -> dict[str, Any]:
    """Images per second with `threads` threads calling `fn` back to back; mean size and latency."""
    from concurrent.futures import ThreadPoolExecutor

    stop_at = time.perf_counter() + seconds
    fn(0)  # warm (nvJPEG's first call creates its state)

    def loop(start: int) -> tuple[int, int, float]:
        done, size, busy, i = 0, 0, 0.0, start
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            size += len(fn(i))
            busy += time.perf_counter() - t0
            done, i = done + 1, i + 1
        return done, size, busy

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(loop, range(threads)))
    elapsed = time.perf_counter() - started
    done = sum(p[0] for p in parts)
    return {
        "threads": threads,
        "images_per_s": round(done / elapsed, 1),
        "ms_per_image": round(1000 * sum(p[2] for p in parts) / max(done, 1), 1),
        "mb_per_image": round(sum(p[1] for p in parts) / max(done, 1) / 1e6, 2),
    }


# ---------------------------------------------------------------- servers under load


def _input_paths(run: Run) -> list[Path]:
    return sorted(p for p in run.args.inputs.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})


def loadgen(run: Run, url: str, mode: str, concurrency: int, seconds: float, label: str) -> dict[str, Any]:
    """The peers' load generator (the same client for everyone); its JSON line."""
    cmd = [
        sys.executable,
        str(run.args.peers / "loadgen.py"),
        url,
        str(run.args.inputs),
        "--mode",
        mode,
        "--concurrency",
        str(concurrency),
        "--seconds",
        str(seconds),
        "--procs",
        str(run.args.procs),
        "--label",
        label,
    ]
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, env=_client_env())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"label": label, "concurrency": concurrency, "error": done.stderr[-600:]}
    result: dict[str, Any] = json.loads(lines[-1])
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["client_cpu_cores"] = round(used / seconds, 2)  # the load generator's processes
    # loadgen.py waits for answers still in flight at the end and drops them from its figures: a wall
    # time well past `seconds` means late answers (see bench/results/side_by_side_h200.md)
    result["loadgen_wall_s"] = round(time.perf_counter() - started, 1)
    return result


def _client_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


class Server:
    """A server process in its own process group; `stop` ends the whole group."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path, ready_url: str, timeout: float):
        self.name, self.log, self.ready_url = name, log, ready_url
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.ready_s = self._wait(timeout)

    def _wait(self, timeout: float) -> float:
        import httpx

        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(self.ready_url, timeout=2.0, trust_env=False).status_code == 200:
                    return round(time.perf_counter() - started, 1)
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack into the log
        time.sleep(2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait)
                return
            except (subprocess.TimeoutExpired, ProcessLookupError):
                continue


class Sampler:
    """While a load runs: GPU busy fraction (NVML), the server's CPU cores, the event loop's lag
    (GET /healthz latency) and, with `probe`, Server-Timing stages of real requests. GPU and CPU
    are read over the first `window_s` seconds (the load window), not over answers that come late."""

    def __init__(
        self, pid: int, health_url: str | None, probe: Callable[[], dict[str, float]] | None, window_s: float
    ) -> None:
        self.pid, self.health_url, self.probe = pid, health_url, probe
        self.gpu: list[float] = []
        self.lag: list[float] = []
        self.stages: list[dict[str, float]] = []
        self.cpu0, self.t0 = _cpu_seconds(pid), time.perf_counter()
        self.window: tuple[float, float, int] | None = None  # (seconds, CPU seconds, GPU samples) at its end
        self.timer = threading.Timer(window_s, self._close_window)
        self.timer.daemon = True
        self.timer.start()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._gpu, daemon=True)]
        if health_url:
            self.threads.append(threading.Thread(target=self._health, daemon=True))
        if probe:
            self.threads.append(threading.Thread(target=self._probe, daemon=True))
        for thread in self.threads:
            thread.start()

    def _gpu(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            return
        while not self.stopped.wait(0.1):
            self.gpu.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)

    def _health(self) -> None:
        import httpx

        assert self.health_url is not None
        with httpx.Client(timeout=10, trust_env=False) as client:
            while not self.stopped.wait(0.1):
                t0 = time.perf_counter()
                try:
                    client.get(self.health_url)
                    self.lag.append(time.perf_counter() - t0)
                except httpx.HTTPError:
                    pass

    def _probe(self) -> None:
        assert self.probe is not None
        while not self.stopped.wait(0.5):
            with contextlib.suppress(Exception):
                self.stages.append(self.probe())

    def _close_window(self) -> None:
        self.window = (time.perf_counter() - self.t0, _cpu_seconds(self.pid) - self.cpu0, len(self.gpu))

    def stop(self) -> dict[str, Any]:
        self.timer.cancel()
        if self.window is None:
            self._close_window()
        assert self.window is not None
        wall, cpu, samples = self.window
        gpu = self.gpu[:samples]
        self.stopped.set()
        for thread in self.threads:  # daemon threads: a slow NVML call or probe must not hold up the run
            thread.join(1.0)
        lag = sorted(self.lag)
        result: dict[str, Any] = {
            "gpu_busy": round(sum(gpu) / len(gpu) / 100, 3) if gpu else None,
            "server_cpu_cores": round(cpu / wall, 2),
            "gpu_samples": len(gpu),
        }
        if lag:
            result["loop_lag_p50_ms"] = round(lag[len(lag) // 2] * 1000, 1)
            result["loop_lag_p99_ms"] = round(lag[min(len(lag) - 1, int(0.99 * len(lag)))] * 1000, 1)
        if self.stages:
            names = sorted({n for s in self.stages for n in s})
            result["stages_ms"] = {
                n: round(sum(s.get(n, 0.0) for s in self.stages) / len(self.stages), 1) for n in names
            }
        return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid`'s process group members (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pid:  # fields[2]: process group id (the servers lead their own groups)
            total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


def load_points(
    run: Run,
    rows: list[dict[str, Any]],
    server: Server,
    url: str,
    mode: str,
    name: str,
    health: str | None,
    probe_for: Callable[[str], Callable[[], dict[str, float]]] | None,
    fmt: str,
) -> None:
    """Warm up, then one loadgen run per concurrency level, with a sampler alongside."""
    loadgen(run, url, mode, 8, run.args.warmup_s, "warmup")
    for concurrency in run.concurrency:
        if run.left() < run.args.seconds + 15:
            rows.append({"target": name, "format": fmt, "concurrency": concurrency, "skipped": "out of time"})
            continue
        probe = probe_for(fmt) if probe_for and concurrency >= 16 else None
        sampler = Sampler(server.process.pid, health, probe, run.args.seconds + 1.0)  # + loadgen's start
        profile = run.out / f"profile-{name}-{fmt}-{concurrency}.txt"
        profiled = run.args.profile and name.startswith("service") and concurrency == max(run.concurrency)
        with sampled(server.process.pid, profile) if profiled else contextlib.nullcontext():
            result = loadgen(run, url, mode, concurrency, run.args.seconds, f"{name} {fmt}")
        if profiled:
            run.results.setdefault("profiles", {})[f"{name} {fmt} c={concurrency}"] = summary(profile)
        rows.append({"target": name, "format": fmt, **result, **sampler.stop()})
        print(rows[-1], flush=True)
        run.save()


def service(run: Run, rows: list[dict[str, Any]]) -> None:


    repository = prepare_repository(run)
    for workers in (int(w) for w in run.args.service_workers.split(",")):
        if run.left() < 90:
            rows.append({"target": f"service x{workers} processes", "skipped": f"{run.left():.0f} s left"})
            continue
        _service_pass(run, rows, repository, workers)


def _service_pass(run: Run, rows: list[dict[str, Any]], repository: Path, workers: int) -> None:
    """One server with FILTERS_WORKERS=`workers`: ready, then every format's load points."""
    import httpx

    from tests.support.live_server import free_port

    port = free_port()
    env = dict(os.environ) | {
        "FILTERS_HOST": "127.0.0.1",
        "FILTERS_PORT": str(port),
        "FILTERS_GRPC_PORT": str(free_port()),
        "FILTERS_MODEL_REPOSITORY": str(repository),
        "FILTERS_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",
        "FILTERS_RUNTIME_PREFERENCE": '["onnxruntime"]' if run.args.cpu_smoke else '["torch", "onnxruntime"]',
        "FILTERS_WORKERS": str(workers),
    }
    name = "service" if workers == 1 else f"service x{workers} processes"
    base = f"http://127.0.0.1:{port}"
    server = Server(
        name,
        [sys.executable, "-m", "service"],
        env,
        run.out / f"service-{workers}.log",
        f"{base}/readyz",
        timeout=max(60.0, min(300.0, run.left() - 120)),
    )
    try:
        _wait_every_process_ready(base, timeout_s=max(30.0, run.left() - 60))
        models = httpx.get(f"{base}/v1/models", timeout=30, trust_env=False).json()["models"]
        rows.append(
            {
                "target": name,
                "what": "ready",
                "ready_s": server.ready_s,
                "runtime": models[0]["runtime"],
                "slots": models[0].get("slots"),
                "skipped_runtimes": models[0].get("skipped_runtimes"),
            }
        )
        print(rows[-1], flush=True)
        for fmt in run.args.formats.split(","):
            query = f"model={NAME}&format={fmt}" + ("&quality=90" if fmt == "jpeg" else "")
            load_points(
                run,
                rows,
                server,
                f"{base}/v1/superres?{query}",
                "raw",
                name,
                f"{base}/healthz",
                lambda f: _timing_probe(run, base, f),
                fmt,
            )
    finally:
        server.stop()


def _wait_every_process_ready(base: str, timeout_s: float) -> None:
    """/readyz 200 on 16 fresh connections in a row (with several processes, each may be reached)."""
    import httpx

    deadline, streak = time.monotonic() + timeout_s, 0
    while streak < 16 and time.monotonic() < deadline:
        try:
            ok = httpx.get(f"{base}/readyz", timeout=5, trust_env=False).status_code == 200
        except httpx.HTTPError:
            ok = False
        streak = streak + 1 if ok else 0
        if not ok:
            time.sleep(0.5)


def _timing_probe(run: Run, base: str, fmt: str) -> Callable[[], dict[str, float]]:
    """One real request; its Server-Timing stages in milliseconds."""
    import cv2
    import httpx
    import numpy as np

    body = _input_paths(run)[0].read_bytes()
    height, width = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    expected = (height * 4, width * 4)
    params = {"model": NAME, "format": fmt}

    def probe() -> dict[str, float]:
        response = httpx.post(
            f"{base}/v1/superres",
            params=params,
            content=body,
            headers={"content-type": "image/png"},
            timeout=60,
            trust_env=False,
        )
        stages: dict[str, float] = {"bad_answers": float(not _valid_answer(response.content, expected))}
        for part in response.headers.get("server-timing", "").split(","):
            name, _, rest = part.strip().partition(";dur=")
            if name and rest:
                stages[name] = float(rest)
        return stages

    return probe


def _valid_answer(data: bytes, shape: tuple[int, int]) -> bool:
    """Whether an answer decodes to an image of `shape` (catches corrupt JPEG/PNG bytes)."""
    import cv2
    import numpy as np

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return pixels is not None and pixels.shape[:2] == shape


def peer(run: Run, rows: list[dict[str, Any]], name: str) -> None:
    from tests.support.live_server import free_port

    for fmt in run.args.formats.split(","):
        if run.left() < run.args.seconds * len(run.concurrency) + 40:
            rows.append({"target": name, "format": fmt, "skipped": f"{run.left():.0f} s left"})
            continue
        port = free_port()
        script = run.args.peers / ("fastapi_sr.py" if name == "fastapi" else "litserve_sr.py")
        cmd = [sys.executable, str(script), str(run.args.weights), str(port), "--fmt", fmt]
        if name == "litserve":
            cmd += [
                "--batch",
                "8",
                "--workers",
                str(run.args.litserve_workers),
                "--api-servers",
                str(run.args.litserve_api_servers),
            ]
        ready = "/docs" if name == "fastapi" else "/health"
        try:
            server = Server(
                f"{name}-{fmt}",
                cmd,
                _client_env(),
                run.out / f"{name}.log",
                f"http://127.0.0.1:{port}{ready}",
                timeout=90,
            )
        except RuntimeError as exc:
            rows.append({"target": name, "format": fmt, "error": str(exc)[-800:]})
            continue
        try:
            rows.append({"target": name, "format": fmt, "what": "ready", "ready_s": server.ready_s})
            mode = "raw" if name == "fastapi" else "multipart"
            load_points(run, rows, server, f"http://127.0.0.1:{port}/predict", mode, name, None, None, fmt)
        finally:
            server.stop()


# ---------------------------------------------------------------- report


def markdown(results: dict[str, Any]) -> str:
    meta_lines = [f"- {k}: `{v}`" for k, v in results["meta"].items()]
    out = ["# Side by side: engine alone, this service, FastAPI + PyTorch, LitServe", "", *meta_lines, ""]
    sections = results["sections"]
    for name, entry in sections.items():
        out += [f"## {name} ({entry.get('seconds', '-')} s)", ""]
        for key in ("skipped", "error"):
            if key in entry:
                out += [f"**{key}**: `{str(entry[key])[:600]}`", ""]
        rows = entry["rows"]
        loads = [r for r in rows if "ok_per_s" in r or ("concurrency" in r and "target" in r)]
        other = [r for r in rows if r not in loads]
        if loads:
            out += [_load_table(loads), ""]
        out += [f"- `{json.dumps(r, default=str)[:700]}`" for r in other]
        out.append("")
    for name, lines in results.get("profiles", {}).items():
        out += [f"## Server profile: {name} (py-spy)", *lines, ""]
    return "\n".join(out) + "\n"


def _load_table(rows: list[dict[str, Any]]) -> str:
    head = [
        "target",
        "format",
        "concurrency",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "codes",
        "MB/s",
        "GPU busy",
        "server CPU cores",
        "client CPU cores",
        "loop lag p50/p99 ms",
        "stages ms (probes)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lag = f"{r['loop_lag_p50_ms']}/{r['loop_lag_p99_ms']}" if "loop_lag_p50_ms" in r else ""
        stages = ", ".join(f"{k} {v}" for k, v in r.get("stages_ms", {}).items())
        cells = [
            r.get("target"),
            r.get("format"),
            r.get("concurrency"),
            r.get("ok_per_s", r.get("skipped", "")),
            r.get("p50_ms"),
            r.get("p90_ms"),
            r.get("p99_ms"),
            json.dumps(r.get("codes", r.get("error", "")))[:80],
            r.get("mb_per_s"),
            r.get("gpu_busy"),
            r.get("server_cpu_cores"),
            r.get("client_cpu_cores"),
            lag,
            stages,
        ]
        lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--weights", type=Path, required=True)
    cli.add_argument("--inputs", type=Path, required=True, help="folder of 960x540 PNGs")
    cli.add_argument("--peers", type=Path, required=True, help="folder with the peers' scripts (shared/peers)")
    cli.add_argument("--out", type=Path, required=True)
    cli.add_argument("--work", type=Path, default=Path("/tmp/side_by_side"))
    cli.add_argument("--sections", default="engine,encoders,service,litserve,fastapi", help="run in this order")
    cli.add_argument("--engine-batches", default="8", help="engine_only.py --batches")
    cli.add_argument("--budget-s", type=float, default=450.0, help="start nothing that would end after this")
    cli.add_argument("--seconds", type=float, default=8.0, help="seconds per load point")
    cli.add_argument("--warmup-s", type=float, default=3.0)
    cli.add_argument("--encoder-seconds", type=float, default=1.5)
    cli.add_argument("--concurrency", default="1,16,64")
    cli.add_argument("--procs", type=int, default=8, help="load generator processes")
    cli.add_argument("--service-slots", type=int, default=2)
    cli.add_argument("--service-workers", default="1", help="FILTERS_WORKERS values, one service pass each")
    cli.add_argument("--service-batches", default="1,2,4,8")
    cli.add_argument("--queue-delay-ms", type=float, default=2.0)
    cli.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    cli.add_argument("--no-compile", action="store_true")
    cli.add_argument("--cuda-graphs", action="store_true", help="the service replays CUDA graphs of the compiled model")
    cli.add_argument("--litserve-workers", type=int, default=4)
    cli.add_argument("--litserve-api-servers", type=int, default=2)
    cli.add_argument("--profile", action="store_true", help="py-spy the service at the highest concurrency")
    cli.add_argument("--formats", default="jpeg,png", help="output formats, in this order")
    cli.add_argument("--cpu-smoke", action="store_true", help="tiny and on the CPU: checks the script")
    args = cli.parse_args()
    args.frame = (540, 960)
    return args


def main() -> int:
    args = parse()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    run = Run(args)
    run.results["meta"] = meta(run)
    plan: dict[str, tuple[Callable[[Run, list[dict[str, Any]]], None], float]] = {
        "engine": (engine, 40),
        "encoders": (encoders, 30),
        "service": (service, 150),
        "fastapi": (lambda r, rows: peer(r, rows, "fastapi"), 60),
        "litserve": (lambda r, rows: peer(r, rows, "litserve"), 60),
    }
    for name in args.sections.split(","):  # in the order given
        fn, needs = plan[name]
        run.section(name, fn, needs if not args.cpu_smoke else 0)
    run.save()
    print((run.out / "side_by_side.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

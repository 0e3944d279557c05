"""GPU benchmark: the torch runtime engine-only and the service end to end, in one run.

    python bench/gpu_bench.py --weights .device/realesr-animevideov3.pth --inputs .device/inputs --out $OUT

Real-ESRGAN compact x4 (realesr-animevideov3) imported with engines.tooling.realesrgan. Sections
(each appends to <out>/gpu_bench.json and .md as it finishes; a failing section is recorded and
the run goes on; `--budget-s` skips what would not fit):

- fidelity: FP16 vs FP32 (TF32 off) outputs of the torch runtime on the 960x540 inputs, PSNR.
- engine, compiled: `TorchSlot.infer` throughput (uint8 numpy in and out, host copies included)
  for 960x540 frames and 256/512 tiles, batch 1/4/8/16, slots 1/2/4 on one GPU, each slot driven
  by its own thread as the worker pool does; eager, then torch.compile.
- service: the real server (`python -m service`, torch runtime), POST /v1/superres with 960x540
  PNG bodies and JPEG answers at concurrency 1/16/64; Server-Timing stages, GPU busy fraction
  (NVML), server CPU use.

`--cpu-smoke` runs every section tiny on the CPU (torch slot on 'cpu', onnxruntime server) to
check the script before it spends device time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NAME = "realesr-animevideov3"


class Run:
    """Results, the clock, and where to write."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.work: Path = args.work
        self.started = time.perf_counter()
        self.results: dict[str, Any] = {"meta": {}, "sections": {}}
        scale = 10 if args.cpu_smoke else 1  # the smoke run uses 96x54 frames and 25/51 tiles
        self.frame = (540 // scale, 960 // scale)
        self.tiles = {t: (int(t) // scale, int(t) // scale) for t in args.tiles.split(",") if t}
        self.shapes = [self.frame, *self.tiles.values()]
        self.batches = [int(b) for b in args.batches.split(",")]
        self.graph_batches = [int(b) for b in args.graph_batches.split(",")]
        self.slot_counts = [int(s) for s in args.slots.split(",")]
        self.concurrency = [int(c) for c in args.concurrency.split(",")]
        self.reference: tuple[np.ndarray, np.ndarray] | None = None
        self.model: Any = None
        self.module: Any = None

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.started)

    def save(self) -> None:
        (self.out / "gpu_bench.json").write_text(json.dumps(self.results, indent=2, default=str))
        from gpu_report import markdown  # beside this script

        try:
            text = markdown(self.results)
        except Exception as exc:  # the JSON is the record; the table must not stop the run
            text = f"report failed: {type(exc).__name__}: {exc}\n"
        (self.out / "gpu_bench.md").write_text(text)

    def section(self, name: str, fn: Callable[[Run, list[dict[str, Any]]], None]) -> None:
        """Run `fn(run, rows)`; rows it appends are saved as they come (`run.save()`), errors recorded."""
        started = time.perf_counter()
        print(f"== {name} ({self.left():.0f} s left)", flush=True)
        entry: dict[str, Any] = {"rows": []}
        self.results["sections"][name] = entry
        try:
            fn(self, entry["rows"])
        except Exception as exc:
            traceback.print_exc()
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["seconds"] = round(time.perf_counter() - started, 1)
        self.save()


def meta(run: Run) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "device": run.args.device,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        smi = shutil.which("nvidia-smi")
        if smi:
            query = [smi, "--query-gpu=driver_version,clocks.max.sm,power.limit", "--format=csv,noheader"]
            info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip()
    return info


def import_model(run: Run) -> Any:
    from engines.tooling.realesrgan import import_realesrgan
    from service.repository.loader import load_model_config

    folder = run.work / "repository" / NAME
    import_realesrgan(run.args.weights, folder, NAME)
    return load_model_config(folder / "model.toml")


def variant(model: Any, **gpu: Any) -> Any:
    """The imported model with other [gpu]/[instances]/[batching] settings (validated)."""
    from service.repository.config import ModelConfig

    data = model.config.model_dump()
    precision = gpu.pop("precision", "fp16")
    data["gpu"] = {**data["gpu"], **gpu}
    data["instances"]["precision"] = precision
    data["batching"]["max_batch_size"] = max(gpu.get("batch_sizes") or [data["batching"]["max_batch_size"]])
    return model.model_copy(update={"config": ModelConfig.model_validate(data)})


def torch_module(model: Any, smoke: bool) -> Any:
    """The runtime's own loader (onnx2torch from the ONNX); on the CPU smoke run the PyTorch definition."""
    if smoke:
        from engines.tooling.export import load_state_dict
        from engines.tooling.realesrgan import srvgg_from_state_dict

        return srvgg_from_state_dict(load_state_dict(MODEL_WEIGHTS[0]))
    from service.runtimes.torch_cuda.loading import load_module

    return load_module(model)


MODEL_WEIGHTS: list[Path] = []


def frames(run: Run, height: int, width: int, count: int) -> np.ndarray:
    """`count` crops of the input frames, `height` x `width`, cycling through the inputs."""
    import cv2

    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(run.args.inputs.glob("*.png"))]
    crops = []
    for i in range(count):
        image = images[i % len(images)]
        y = (i * 37) % (image.shape[0] - height + 1)
        x = (i * 53) % (image.shape[1] - width + 1)
        crops.append(image[y : y + height, x : x + width])
    return np.ascontiguousarray(np.stack(crops))


def make_slots(run: Run, model: Any, module: Any, count: int) -> list[Any]:
    from service.runtimes.base import SlotPlacement
    from service.runtimes.torch_cuda.slot import TorchSlot

    return [TorchSlot(copy.deepcopy(module), model, SlotPlacement(run.args.device, i, 1)) for i in range(count)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else round(10 * np.log10(255.0**2 / mse), 2)


def fidelity(run: Run, rows: list[dict[str, Any]]) -> None:
    import torch

    model = run.model
    h, w = run.frame
    data = frames(run, h, w, 4)
    torch.backends.cudnn.allow_tf32 = False  # the FP32 reference is real FP32
    (slot32,) = make_slots(run, variant(model, precision="fp32", shapes=[run.frame], batch_sizes=[4]), run.module, 1)
    reference = slot32.infer([data])[0]
    slot32.close()
    torch.backends.cudnn.allow_tf32 = True
    (slot16,) = make_slots(run, variant(model, shapes=[run.frame], batch_sizes=[4]), run.module, 1)
    half = slot16.infer([data])[0]
    slot16.close()
    run.reference = (data, reference)
    differing = float(np.mean(half != reference))
    rows.append({"what": "fp16 vs fp32, eager", "frames": len(data), "psnr_db": psnr(half, reference),
                 "max_abs": int(np.abs(half.astype(int) - reference).max()), "differing_fraction": round(differing, 5)})
    from service.runtimes.base import SlotPlacement
    from service.runtimes.onnxruntime_cpu import OnnxRuntimeSlot

    crop = np.ascontiguousarray(data[:1, :64, :64])
    cpu = OnnxRuntimeSlot(model, SlotPlacement("cpu", 0, os.cpu_count() or 1)).infer([crop])[0]
    (slot,) = make_slots(run, variant(model, precision="fp32", shapes=[(64, 64)], batch_sizes=[1]), run.module, 1)
    gpu32 = slot.infer([crop])[0]
    rows.append({"what": "torch fp32 (TF32 on) vs onnxruntime CPU, 64x64 crop", "psnr_db": psnr(gpu32, cpu)})
    slot.close()
    print(rows, flush=True)


def throughput(slots: list[Any], batch: np.ndarray, seconds: float) -> dict[str, Any]:
    """Each slot on its own thread, calling `infer` back to back for `seconds`."""
    stop, done = threading.Event(), [0] * len(slots)
    ready = threading.Barrier(len(slots) + 1)
    errors: list[str] = []

    def drive(index: int) -> None:
        try:
            slots[index].infer([batch])
            ready.wait()
            while not stop.is_set():
                slots[index].infer([batch])
                done[index] += len(batch)
        except Exception as exc:  # recorded in the row
            errors.append(f"{type(exc).__name__}: {exc}")
            if not ready.broken:
                ready.abort()

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(slots))]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"frames_per_s": round(sum(done) / elapsed, 1), "frames": sum(done), "errors": errors}


def engine(
    run: Run, rows: list[dict[str, Any]], compiled: bool, shapes: list[tuple[int, int]], graphs: bool = False
) -> None:
    import torch

    torch.backends.cudnn.benchmark = True
    mode = run.args.compile_mode
    for shape in shapes:
        if run.left() < run.args.reserve_s:
            rows.append({"shape": shape, "skipped": f"{run.left():.0f} s left"})
            continue
        batches = run.graph_batches if graphs else run.batches
        gpu = {"shapes": [shape], "batch_sizes": batches, "compile": compiled, "compile_mode": mode}
        gpu["cuda_graphs"] = graphs
        model = variant(run.model, **gpu)
        started = time.perf_counter()
        slots = make_slots(run, model, run.module, max(run.slot_counts))
        prepare_s = round(time.perf_counter() - started, 1)
        data = frames(run, shape[0], shape[1], max(batches))
        print(f"{shape}: {len(slots)} slots prepared in {prepare_s} s ({slots[0].description})", flush=True)
        if compiled and shape == run.frame and run.reference is not None:
            ref_data, ref_out = run.reference
            check = slots[0].infer([ref_data])[0]
            rows.append({"shape": shape, "what": "compiled fp16 vs eager fp32", "psnr_db": psnr(check, ref_out)})
        label = "compiled" if compiled else "eager"
        label += " + cuda graphs" if "cuda graphs" in slots[0].description else ""
        for batch in batches:
            for count in run.slot_counts:
                result = throughput(slots[:count], data[:batch], run.args.seconds)
                row = {"mode": label, "shape": shape, "batch": batch, "slots": count, **result, "prepare_s": prepare_s}
                print(row, flush=True)
                rows.append(row)
                run.save()
        for slot in slots:
            slot.close()
        del slots
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def service(run: Run, rows: list[dict[str, Any]]) -> None:
    from gpu_loadgen import run_load

    from service.repository.config import ModelConfig

    smoke = run.args.cpu_smoke
    repository = run.work / "served"
    folder = repository / NAME
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(run.model.folder / "model.onnx", folder / "model.onnx")
    data = run.model.config.model_dump()
    data["tiling"]["tile_size"] = max(run.frame)  # a 960x540 image is one tile: no tiling overhead
    data["batching"].update(max_batch_size=8, max_queue_delay_ms=run.args.queue_delay_ms, max_queued_requests=512)
    data["instances"]["count"] = run.args.service_slots
    batches = [int(b) for b in run.args.service_batches.split(",")]
    data["batching"]["max_batch_size"] = max(batches)
    data["gpu"].update(shapes=[run.frame], batch_sizes=batches, compile=run.args.service_compile,
                       compile_mode=run.args.compile_mode)
    ModelConfig.model_validate(data)  # fail here, not in the server
    (folder / "model.toml").write_text(_toml(data))
    env = {"FILTERS_RUNTIME_PREFERENCE": '["onnxruntime"]' if smoke else '["torch","onnxruntime"]'}
    started = time.perf_counter()
    server = Server(repository, run.out / "server.log", env, ready_timeout=max(60.0, run.left() - 60))
    try:
        import httpx

        models = httpx.get(f"{server.url}/v1/models", timeout=30, trust_env=False).json()["models"]
        first = models[0]
        rows.append({"what": "server", "ready_s": round(time.perf_counter() - started, 1), "runtime": first["runtime"],
                     "slots": first["slots"], "skipped_runtimes": first["skipped_runtimes"]})
        print(rows[-1], flush=True)
        bodies = _bodies(run.args.inputs, run.frame)
        params = {"model": NAME, "format": "jpeg", "quality": "90"}
        run_load(server.url, bodies, params, 4, 2.0 if not smoke else 0.5)  # warm the HTTP path
        for concurrency in run.concurrency:
            if run.left() < 20:
                rows.append({"concurrency": concurrency, "skipped": f"{run.left():.0f} s left"})
                continue
            sampler = Sampler(server.process.pid)
            result = run_load(server.url, bodies, params, concurrency, run.args.load_seconds,
                              timeout_s=run.args.request_timeout_s)
            result.update(sampler.stop(result["window"]))
            print(result, flush=True)
            rows.append(result)
            run.save()
    finally:
        server.stop()


def _bodies(folder: Path, frame: tuple[int, int]) -> list[bytes]:
    """The input PNGs (resized to `frame` when it is not 960x540: the CPU smoke run)."""
    import cv2

    paths = sorted(folder.glob("*.png"))
    if frame == (540, 960):
        return [p.read_bytes() for p in paths]
    small = [cv2.resize(cv2.imread(str(p)), (frame[1], frame[0]), interpolation=cv2.INTER_AREA) for p in paths]
    return [cv2.imencode(".png", image)[1].tobytes() for image in small]


def _toml(data: dict[str, Any]) -> str:
    """model.toml text for a validated config dict (tables of scalars and lists only)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict | list) and v is not None]
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items() if v is not None]
        elif isinstance(table, list) and table and isinstance(table[0], dict):
            for item in table:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {value(v)}" for k, v in item.items() if v is not None]
        elif isinstance(table, list):
            lines.insert(0, f"{key} = {value(table)}")
    return "\n".join(lines) + "\n"


class Server:
    """`python -m service` on a loopback port; on a start that never gets ready, a stack dump of every thread."""

    def __init__(self, repository: Path, log_path: Path, env: dict[str, str], ready_timeout: float) -> None:
        import signal

        import httpx

        from tests.support.live_server import free_port

        port = free_port()
        environment = dict(os.environ) | env | {
            "FILTERS_HOST": "127.0.0.1", "FILTERS_PORT": str(port), "FILTERS_GRPC_PORT": str(free_port()),
            "FILTERS_MODEL_REPOSITORY": str(repository), "FILTERS_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1",
        }
        self.url, self.log_path = f"http://127.0.0.1:{port}", log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=environment,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline, last = time.monotonic() + ready_timeout, "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self._tail()}")
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2.0, trust_env=False)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:300]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        self.process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack into the log
        time.sleep(3)
        self.stop()
        raise RuntimeError(f"server not ready after {ready_timeout:.0f} s (last /readyz: {last}): {self._tail()}")

    def _tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Sampler:
    """Every 100 ms: GPU utilization (NVML) and the server's CPU seconds, read back over a time window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float | None, float]] = []  # wall time, GPU %, server CPU seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        handle, nvml = None, None
        try:
            import pynvml

            pynvml.nvmlInit()
            handle, nvml = pynvml.nvmlDeviceGetHandleByIndex(0), pynvml
        except Exception:  # no NVML (the CPU smoke run): CPU only
            pass
        while not self.stopped.wait(0.1):
            gpu = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu) if nvml is not None else None
            self.samples.append((time.time(), gpu, _cpu_seconds(self.pid)))

    def stop(self, window: list[float]) -> dict[str, Any]:
        """GPU busy fraction and server CPU cores over `window` (start, stop wall time)."""
        self.stopped.set()
        self.thread.join()
        inside = [s for s in self.samples if window[0] <= s[0] <= window[1]]
        if len(inside) < 2:
            return {"gpu_busy": None, "server_cpu_cores": None}
        gpu = [s[1] for s in inside if s[1] is not None]
        cores = (inside[-1][2] - inside[0][2]) / (inside[-1][0] - inside[0][0])
        return {"gpu_busy": round(float(np.mean(gpu)) / 100, 3) if gpu else None, "server_cpu_cores": round(cores, 2)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse() -> argparse.Namespace:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--weights", type=Path, required=True)
    cli.add_argument("--inputs", type=Path, required=True, help="folder of 960x540 PNGs")
    cli.add_argument("--out", type=Path, required=True, help="results: gpu_bench.json, gpu_bench.md, server.log")
    cli.add_argument("--work", type=Path, default=Path("/tmp/gpu_bench_work"), help="model files, served repository")
    cli.add_argument("--sections", default="fidelity,engine,compiled,service,graphs")
    cli.add_argument("--budget-s", type=float, default=520.0, help="stop starting new work after this")
    cli.add_argument("--reserve-s", type=float, default=120.0, help="time kept for the service section")
    cli.add_argument("--seconds", type=float, default=1.5, help="seconds per engine-only measurement")
    cli.add_argument("--load-seconds", type=float, default=10.0, help="seconds per concurrency level")
    cli.add_argument("--batches", default="1,4,8,16")
    cli.add_argument("--slots", default="1,2,4")
    cli.add_argument("--tiles", default="256,512", help="square tile sides besides the 960x540 frame")
    cli.add_argument("--compiled-shapes", default="frame,256,512", help="shapes for the compiled section")
    cli.add_argument("--graph-shapes", default="256", help="shapes for the compiled + CUDA graphs section")
    cli.add_argument("--graph-batches", default="1,4", help="batch sizes for the CUDA graphs section")
    cli.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    cli.add_argument("--service-compile", action="store_true", help="torch.compile in the served model")
    cli.add_argument("--service-slots", type=int, default=2, help="[instances] count of the served model")
    cli.add_argument("--service-batches", default="1,2,4,8", help="[gpu] batch_sizes of the served model")
    cli.add_argument("--queue-delay-ms", type=float, default=4.0)
    cli.add_argument("--concurrency", default="1,16,64")
    cli.add_argument("--request-timeout-s", type=float, help="X-Request-Timeout of every request (default: server's)")
    cli.add_argument("--cpu-smoke", action="store_true", help="tiny settings on the CPU, to check the script")
    return cli.parse_args()


def main() -> int:
    args = parse()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")  # the load is loopback; never via a proxy
    args.device = "cpu" if args.cpu_smoke else "cuda:0"
    MODEL_WEIGHTS.append(args.weights)
    run = Run(args)
    run.results["meta"] = meta(run)
    run.model = import_model(run)
    run.module = torch_module(run.model, args.cpu_smoke)
    wanted = args.sections.split(",")
    if "fidelity" in wanted:
        run.section("fidelity", fidelity)
    if "engine" in wanted:
        run.section("engine", lambda r, rows: engine(r, rows, False, r.shapes))
    if "compiled" in wanted:
        named = {"frame": run.frame, **run.tiles}
        shapes = [named[s] for s in args.compiled_shapes.split(",") if s in named]
        run.section("compiled", lambda r, rows: engine(r, rows, True, shapes))
    if "service" in wanted:
        run.section("service", service)
    if "graphs" in wanted:
        named = {"frame": run.frame, **run.tiles}
        graph_shapes = [named[s] for s in args.graph_shapes.split(",") if s in named]
        run.args.reserve_s = 0  # last section: use what is left
        run.section("graphs", lambda r, rows: engine(r, rows, True, graph_shapes, graphs=True))
    run.results["meta"]["total_s"] = round(time.perf_counter() - run.started, 1)
    run.save()
    print((run.out / "gpu_bench.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

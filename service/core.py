"""The serving core that every front end (HTTP, gRPC) calls: loaded models, their schedulers,
the codec thread pool, and the server's readiness."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from service import gc_pauses, metrics
from service.errors import Cancelled, DeadlineExceeded, ModelNotFound, NotReady, ServiceError, Unprocessable
from service.media import decoder_process, encoder_process, i420_kernel
from service.pipelines.warmup import warmup_inputs
from service.repository.config import LoadedConfig, ModelConfig, Task
from service.repository.loader import scan_repository
from service.runtimes.base import ExecutionSlot, Runtime, SlotPlacement
from service.runtimes.fault_injection import with_fault_injection
from service.runtimes.registry import choose_runtime
from service.runtimes.torch_cuda import waiting
from service.scheduling.batcher import BatchPolicy
from service.scheduling.records import RequestTicket
from service.scheduling.scheduler import ModelScheduler
from service.settings import Settings
from service.workers.pool import SlotPool

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class ServedModel:
    """A model of the repository with the runtime and scheduler serving it."""

    loaded: LoadedConfig
    runtime: Runtime
    skipped_runtimes: dict[str, str]
    scheduler: ModelScheduler

    @property
    def config(self) -> ModelConfig:
        return self.loaded.config

    @property
    def name(self) -> str:
        return self.loaded.config.name


@dataclass
class ServerState:
    """Readiness: loading, ready, draining, or failed to load."""

    loaded: bool = False
    draining: bool = False
    load_error: str | None = None
    problems: list[str] = field(default_factory=list)


class ServingCore:
    """Everything a request needs, shared by the front ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configs = scan_repository(settings.model_repository, settings.models or None)
        self.models: dict[str, ServedModel] = {}
        self.state = ServerState()
        self._codec_pool = ThreadPoolExecutor(settings.codec_threads, thread_name_prefix="codec")
        waiting.set_mode(settings.gpu_wait)
        gc_pauses.install()

    async def start(self) -> None:
        """Load and warm up every model; readiness turns true only when all are up."""
        try:
            for loaded in self.configs:
                served = self._plan(loaded)
                await served.scheduler.pool.start(self._warmup(loaded.config) if self.settings.warmup else None)
                self.models[served.name] = served
                log.info("model %s ready on %s", served.name, ", ".join(served.scheduler.pool.descriptions))
            # Everything loaded so far (a compiled model alone is ~500,000 objects) lives until exit: keep it
            # out of the cyclic GC, whose full passes over it held the GIL ~200 ms each and stalled the
            # event loop under load (docs/performance.md, "Garbage collection").
            gc.freeze()
            if self.settings.gpu_encode and any(m.scheduler.pool.outputs_on_device for m in self.models.values()):
                await self.offload(i420_kernel.problem)  # compiles and checks the video's 4:2:0 kernel, once
            if self.settings.video.encoder_process and encoder_process.available():
                encoder_process.SPARES.prepare()  # the first video's encoder child, started ahead
            if self.settings.video.decoder_process and decoder_process.available():
                decoder_process.SPARES.prepare()
            self.state.loaded = True
        except Exception as exc:
            self.state.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("loading models failed; the server stays unready")

    def _plan(self, loaded: LoadedConfig) -> ServedModel:
        config = loaded.config
        choice = choose_runtime(loaded, self.settings.runtime_preference)
        runtime = choice.runtime
        slots = config.instances.count * len(runtime.devices())
        threads = max(1, self.settings.cpu_threads // config.instances.count)
        devices = runtime.devices()

        def factory(index: int) -> ExecutionSlot:
            placement = SlotPlacement(devices[index % len(devices)], index, threads)
            return with_fault_injection(runtime.create_slot(loaded, placement), self.settings.fault_injection)

        def observe(size: int, seconds: float) -> None:
            metrics.BATCH_SIZE.labels(config.name).observe(size)
            metrics.COMPUTE_SECONDS.labels(config.name).observe(seconds)
            metrics.ITEMS_EXECUTED.labels(config.name).inc(size)

        pool = SlotPool(config.name, factory, slots, observe)
        policy = BatchPolicy(config.batching.max_batch_size, config.batching.max_queue_delay_ms / 1000.0)
        scheduler = ModelScheduler(
            config.name,
            policy,
            pool,
            config.batching.max_queued_requests,
            slots=slots,
            shed_by_deadline=self.settings.shed_by_deadline,
        )
        return ServedModel(loaded, runtime, choice.skipped, scheduler)

    @staticmethod
    def _warmup(config: ModelConfig) -> Callable[[ExecutionSlot], None]:
        def run(slot: ExecutionSlot) -> None:
            slot.infer(warmup_inputs(config))  # shaped per task: tile, detector input, frame pair + t

        return run

    async def stop(self) -> None:
        for served in self.models.values():
            await served.scheduler.close()
        self._codec_pool.shutdown(wait=False, cancel_futures=True)

    @property
    def ready(self) -> bool:
        return (
            self.state.loaded
            and not self.state.draining
            and all(m.scheduler.pool.healthy for m in self.models.values())
        )

    def require_ready(self) -> None:
        if self.state.draining:
            raise NotReady("the server is shutting down; send the request to another replica")
        if not self.state.loaded:
            raise NotReady(self.state.load_error or "models are still loading; retry shortly")

    def model(self, name: str) -> ServedModel:
        self.require_ready()
        served = self.models.get(name)
        if served is None:
            raise ModelNotFound(f"no model named '{name}'; loaded models: {sorted(self.models)}")
        return served

    def superres_model(self, scale: int | None, name: str | None) -> ServedModel:
        """The model a superres request asks for by name and/or scale."""
        self.require_ready()
        if name is not None:
            served = self.model(name)
            if served.config.task != "superres":
                raise Unprocessable(f"model '{name}' is a {served.config.task} model, not superres")
            if scale is not None and served.config.scale != scale:
                raise Unprocessable(f"model '{name}' upscales x{served.config.scale}, not x{scale}")
            return served
        candidates = [m for m in self.models.values() if m.config.task == "superres"]
        scales = sorted({m.config.scale for m in candidates})
        wanted = scale if scale is not None else (2 if 2 in scales else (scales[0] if scales else None))
        matching = [m for m in candidates if m.config.scale == wanted]
        if not matching:
            raise ModelNotFound(f"no superres model with scale {scale} is loaded; loaded scales: {scales}")
        matching.sort(key=lambda m: (not (m.config.superres and m.config.superres.default), m.name))
        return matching[0]

    def task_model(self, task: Task, name: str | None) -> ServedModel:
        """The model a request for `task` asks for by name; without a name, the first loaded model of
        that task by name (`superres_model` picks by scale instead)."""
        self.require_ready()
        if name is not None:
            served = self.model(name)
            if served.config.task != task:
                raise Unprocessable(f"model '{name}' is a {served.config.task} model, not {task}")
            return served
        names = sorted(m.name for m in self.models.values() if m.config.task == task)
        if not names:
            raise ModelNotFound(f"no {task} model is loaded; loaded models: {sorted(self.models)}")
        return self.models[names[0]]

    def new_ticket(self, timeout_s: float | None) -> RequestTicket:
        budget = self.settings.default_deadline_s if timeout_s is None else timeout_s
        return RequestTicket(deadline=asyncio.get_running_loop().time() + budget)

    @contextlib.asynccontextmanager
    async def request_scope(self, served: ServedModel, timeout_s: float | None) -> AsyncIterator[RequestTicket]:
        """One client request for `served`, the same for every front end.

        Admits it (or raises `Overloaded`: no place left, or a deadline the queued work would
        outlast; `ModelScheduler.admit`), bounds it by its deadline (`DeadlineExceeded` when it
        passes), and counts it in the metrics by outcome. The ticket it yields carries the
        deadline and the cancellation flag that the front end sets when its client goes away.
        """
        started = time.perf_counter()
        status = 200
        try:
            ticket = self.new_ticket(timeout_s)
            with served.scheduler.admit(ticket):
                async with asyncio.timeout_at(ticket.deadline):
                    yield ticket
        except (TimeoutError, DeadlineExceeded):
            status = 504
            metrics.DROPPED.labels(served.name, "deadline").inc()
            raise DeadlineExceeded("the request's deadline passed before it was answered") from None
        except Cancelled:
            status = 499
            metrics.DROPPED.labels(served.name, "client_gone").inc()
            raise
        except ServiceError as exc:
            status = exc.http_status
            raise
        except BaseException:
            status = 500
            raise
        finally:
            metrics.REQUESTS.labels(served.name, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(served.name).observe(time.perf_counter() - started)

    async def offload(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run CPU work (codecs, stitching) on the codec pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._codec_pool, lambda: fn(*args, **kwargs))

"""Steady closed-loop load for the multi-replica test: a few clients, each sending its next
request as soon as the last one is answered, with every request recorded (when it started and
ended, and how it ended) so that failures can be matched to what happened to the replicas.

The load runs on its own thread and event loop, so the scenario can stop and start processes
with plain blocking calls meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx


@dataclass(frozen=True)
class Outcome:
    """How one call ended: ok, or what went wrong ("502 upstream_failed", "UNAVAILABLE: ...",
    "ReadError"); `retried` lists the failed attempts the client retried before this end."""

    ok: bool
    detail: str
    retried: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    """One call: when it started and ended (wall clock, as nginx logs it) and how it ended."""

    protocol: str
    start: float
    end: float
    ok: bool
    outcome: str
    retried: tuple[str, ...] = ()


class Target(Protocol):
    """Something to send requests to; `call` never raises, it describes the failure."""

    protocol: str

    async def open(self) -> None: ...

    async def call(self) -> Outcome: ...

    async def close(self) -> None: ...


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, or None when `data` is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def describe_error(response: httpx.Response) -> str:
    """`"<status> <error.code>"` of an error response in the service's JSON format, else the status and body."""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} unstructured: {response.text[:80]!r}"
    return f"{response.status_code} {code}"


class HttpSuperres:
    """POST /v1/superres with one PNG; an answer counts as ok only if it is the upscaled PNG."""

    protocol = "http"

    def __init__(self, url: str, body: bytes, expected_size: tuple[int, int]) -> None:
        self.url = url
        self.body = body
        self.expected_size = expected_size
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self._client = httpx.AsyncClient(timeout=120.0, headers={"Content-Type": "image/png"})

    async def call(self) -> Outcome:
        """One POST, no client-side retry: moving a request to another replica is nginx's job."""
        assert self._client is not None
        try:
            response = await self._client.post(f"{self.url}/v1/superres", content=self.body)
        except httpx.HTTPError as exc:
            return Outcome(False, type(exc).__name__)
        if response.status_code != 200:
            return Outcome(False, describe_error(response))
        size = png_size(response.content)
        if size != self.expected_size:
            return Outcome(False, f"200 with a wrong body: PNG size {size}, expected {self.expected_size}")
        return Outcome(True, "200")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class ClosedLoopLoad:
    """`concurrency` clients per target, each in a loop, until `stop()`."""

    def __init__(self, targets: list[Target], concurrency: int) -> None:
        self.targets = targets
        self.concurrency = concurrency
        self.samples: list[Sample] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError("the load generator failed to start") from self._error

    def stop(self) -> list[Sample]:
        """Stop sending, wait for the requests in flight, return every sample (by start time)."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(180)
        if self._error is not None:
            raise RuntimeError("the load generator failed") from self._error
        return sorted(self.samples, key=lambda s: s.start)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()/stop() on the caller's thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            for target in self.targets:
                await target.open()
                stack.push_async_callback(target.close)
            clients = [
                asyncio.create_task(self._client(target)) for target in self.targets for _ in range(self.concurrency)
            ]
            self._ready.set()
            await asyncio.gather(*clients)

    async def _client(self, target: Target) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            start = time.time()
            outcome = await target.call()
            self.samples.append(
                Sample(target.protocol, start, time.time(), outcome.ok, outcome.detail, outcome.retried)
            )


class GrpcSuperres:
    """`filters.v1.Filters/Superres` with one PNG, through one gRPC channel (our own API).

    Like a gRPC client with a retry policy, it retries UNAVAILABLE (with a short backoff, for
    at most `retry_budget_s`): a draining replica refuses new calls with UNAVAILABLE inside a
    successful HTTP/2 response, which nginx cannot tell from an answer, so it cannot move them.
    """

    protocol = "grpc"

    def __init__(self, target: str, body: bytes, expected_size: tuple[int, int], retry_budget_s: float = 30.0) -> None:
        self.target = target
        self.body = body
        self.expected_size = expected_size
        self.retry_budget_s = retry_budget_s
        self._channel: Any = None
        self._stub: Any = None

    async def open(self) -> None:
        import grpc

        from service.grpc.generated.filters.v1 import filters_pb2_grpc

        self._channel = grpc.aio.insecure_channel(self.target, options=[("grpc.max_receive_message_length", 64 << 20)])
        self._stub = filters_pb2_grpc.FiltersStub(self._channel)  # type: ignore[no-untyped-call]

    async def call(self) -> Outcome:
        import grpc

        from service.grpc.generated.filters.v1 import filters_pb2

        request = filters_pb2.SuperresRequest(image=filters_pb2.Image(encoded=self.body))
        give_up = time.monotonic() + self.retry_budget_s
        retried: list[str] = []
        while True:
            try:
                response = await self._stub.Superres(request, timeout=120)
            except grpc.aio.AioRpcError as exc:
                detail = f"{exc.code().name}: {exc.details()}"
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > give_up:
                    return Outcome(False, detail, tuple(retried))
                retried.append(detail)
                await asyncio.sleep(0.02 * min(len(retried), 10))
                continue
            size = png_size(response.image.encoded)
            if size != self.expected_size:
                return Outcome(
                    False, f"OK with a wrong image: PNG size {size}, expected {self.expected_size}", tuple(retried)
                )
            return Outcome(True, "OK", tuple(retried))

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

"""The gRPC side: one server interceptor for request IDs, API keys, rate limits and access logs.

The same keys and open list as HTTP: `authorization: Bearer <key>` or `x-api-key: <key>` metadata,
else UNAUTHENTICATED; a client over its rate gets RESOURCE_EXHAUSTED with `retry-after` trailing
metadata. The request ID comes from `x-request-id` metadata (or is made here), is bound for the
call's log lines, and goes back as `x-request-id` trailing metadata. Each call ends with one
access line on the `service.grpc.access` logger (INFO), like uvicorn's for HTTP. A request
message that does not parse is answered INVALID_ARGUMENT (grpc itself would say UNKNOWN).

Pass `grpc_interceptors(settings.auth, settings.rate_limit)` first to `grpc.aio.server(interceptors=...)`.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from service.errors import Overloaded, ServiceError
from service.security.keys import KeyRing, presented_key
from service.security.rate_limit import TokenBuckets, shared_buckets
from service.security.request_id import bind_request_id
from service.security.settings import AuthSettings, RateLimitSettings

access_log = logging.getLogger("service.grpc.access")
Context = Any  # grpc.aio.ServicerContext (grpcio ships no type information)


def _metadata(context: Context) -> dict[str, str]:
    pairs = context.invocation_metadata() or ()
    return {k.lower(): v for k, v in pairs if isinstance(v, str)}


def _address(peer: str) -> str:
    """`ipv4:127.0.0.1:5555` -> `127.0.0.1` (the port changes per connection)."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.split(":", 1)[1].rsplit(":", 1)[0]
    return peer


@dataclass(frozen=True)
class _CallPolicy:
    """What every call of one method goes through before and after its handler."""

    method: str
    keys: KeyRing | None
    buckets: TokenBuckets | None
    checked: bool

    async def admit(self, context: Context) -> None:
        """Bind the request ID; check key and rate unless the method is open (abort if refused)."""
        metadata = _metadata(context)
        request_id = bind_request_id(metadata.get("x-request-id"))
        trailing: tuple[tuple[str, str], ...] = (("x-request-id", request_id),)
        context.set_trailing_metadata(trailing)
        if not self.checked:
            return
        try:
            client = _address(context.peer())
            if self.keys is not None:
                client = self.keys.identify(presented_key(metadata.get("authorization"), metadata.get("x-api-key")))
            if self.buckets is not None:
                self.buckets.check(client)
        except ServiceError as error:
            if isinstance(error, Overloaded):
                trailing += (("retry-after", str(max(1, math.ceil(error.retry_after_s)))),)
            await context.abort(grpc.StatusCode[error.grpc_code], error.message, trailing)

    def finished(self, context: Context | None, peer: str, started: float, failed: bool) -> None:
        """Log the call. `context` None: the call was torn down before its handler ended (a closed
        stream), and its context must not be touched: grpc's `code()` on it can crash the process."""
        if context is None:
            name = grpc.StatusCode.CANCELLED.name
        else:
            code = context.code() or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        elapsed_ms = (time.perf_counter() - started) * 1000
        access_log.info('%s - "%s" %s %.1f ms', peer, self.method, name, elapsed_ms)


class SecurityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc,unused-ignore]
    """Runs `_CallPolicy` around every handler; open methods skip the key and rate checks."""

    def __init__(self, keys: KeyRing | None, buckets: TokenBuckets | None, open_methods: list[str]) -> None:
        self.keys = keys
        self.buckets = buckets
        self.open_methods = frozenset(open_methods)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = str(getattr(handler_call_details, "method", ""))
        policy = _CallPolicy(method, self.keys, self.buckets, method not in self.open_methods)
        return _guarded(handler, policy)


@dataclass(frozen=True)
class _Undecodable:
    """A request message that did not parse; answered INVALID_ARGUMENT instead of grpc's UNKNOWN."""

    reason: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as exc:  # protobuf's DecodeError, or whatever a custom deserializer raises
            return _Undecodable(f"the request is not a valid message: {exc}")

    return parse


async def _refuse_undecodable(message: Any, context: Context) -> None:
    if isinstance(message, _Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message.reason)


async def _checked_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    async for message in requests:
        await _refuse_undecodable(message, context)
        yield message


def _guarded(handler: grpc.RpcMethodHandler, policy: _CallPolicy) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler` that runs inside `policy`."""
    serdes = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary, policy, False), **serdes)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_unary(handler.stream_unary, policy, True), **serdes)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_streaming(handler.unary_stream, policy, False), **serdes)
    return grpc.stream_stream_rpc_method_handler(_streaming(handler.stream_stream, policy, True), **serdes)


async def _admitted(request: Any, context: Context, policy: _CallPolicy, streaming_request: bool) -> Any:
    """Run the policy's checks; the request (stream) with undecodable messages refused."""
    await policy.admit(context)
    if streaming_request:
        return _checked_stream(request, context)
    await _refuse_undecodable(request, context)
    return request


def _unary(behavior: Callable[..., Any], policy: _CallPolicy, streaming_request: bool) -> Callable[..., Awaitable[Any]]:
    async def call(request: Any, context: Context) -> Any:
        started, failed, peer = time.perf_counter(), True, context.peer()
        try:
            request = await _admitted(request, context, policy, streaming_request)
            result = behavior(request, context)
            response = await result if inspect.isawaitable(result) else result
            failed = False
            return response
        finally:
            policy.finished(context, peer, started, failed)

    return call


def _streaming(
    behavior: Callable[..., Any], policy: _CallPolicy, streaming_request: bool
) -> Callable[..., AsyncIterator[Any]]:
    async def call(request: Any, context: Context) -> AsyncIterator[Any]:
        started, failed, peer = time.perf_counter(), True, context.peer()
        torn_down = False
        try:
            request = await _admitted(request, context, policy, streaming_request)
            result = behavior(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            elif inspect.isawaitable(result):
                await result  # a handler that writes with context.write()
            else:
                for response in result:
                    yield response
            failed = False
        except GeneratorExit:  # closed after the call ended (the client went away): its context is gone
            torn_down = True
            raise
        finally:
            policy.finished(None if torn_down else context, peer, started, failed)

    return call


def grpc_interceptors(auth: AuthSettings, rate_limit: RateLimitSettings) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors for `grpc.aio.server(interceptors=...)`; request IDs always, keys and limits if on."""
    keys = KeyRing(auth) if auth.enabled else None
    buckets = shared_buckets(rate_limit) if rate_limit.enabled else None
    return [SecurityInterceptor(keys, buckets, auth.open_paths)]

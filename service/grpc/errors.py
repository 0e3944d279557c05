"""The one place errors become gRPC statuses: `ServiceError.grpc_code` -> `grpc.StatusCode`.

An interceptor wraps every method of the server, so servicers just raise `ServiceError`s. The
status carries the error's message (file paths redacted) and trailing metadata
`filters-error-code` (the HTTP API's `error.code`), plus `retry-after` (seconds) when overloaded.
Anything else is logged and answered INTERNAL without details. It also refuses to send a
response over the message limit with a message that says what to do, instead of the transport's
own failure.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message

from service.errors import Overloaded, PayloadTooLarge, ServiceError
from service.security.redact import redact_paths

log = logging.getLogger(__name__)
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def status_code(error: ServiceError) -> grpc.StatusCode:
    """The gRPC status of a service error."""
    return grpc.StatusCode[error.grpc_code]


async def abort_with(context: Context, error: ServiceError) -> None:
    """End the call with `error`'s status, message and trailing metadata (raises AbortError)."""
    trailing = [(k, v) for k, v in (context.trailing_metadata() or ()) if k != "filters-error-code"]
    trailing.append(("filters-error-code", error.code))
    if isinstance(error, Overloaded):
        trailing.append(("retry-after", str(max(1, math.ceil(error.retry_after_s)))))
    await context.abort(status_code(error), redact_paths(error.message), tuple(trailing))


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc,unused-ignore]
    """Maps the errors of every method it wraps (all four kinds), and checks response sizes."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        serdes = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary), **serdes)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary), **serdes)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._streaming(handler.unary_stream), **serdes)
        return grpc.stream_stream_rpc_method_handler(self._streaming(handler.stream_stream), **serdes)

    def _unary(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, context: Context) -> Any:
            try:
                response = await behavior(request, context)
                self._check_size(response)
                return response
            except ServiceError as error:
                await abort_with(context, error)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                await _internal(context)

        return call

    def _streaming(self, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                async for response in behavior(request, context):
                    self._check_size(response)
                    yield response
            except ServiceError as error:
                await abort_with(context, error)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                await _internal(context)

        return call

    def _check_size(self, response: Any) -> None:
        if isinstance(response, Message) and (size := response.ByteSize()) > self.max_message_bytes:
            raise PayloadTooLarge(
                f"the response is {size} bytes, over the gRPC message limit of {self.max_message_bytes} "
                "(FILTERS_GRPC_MAX_MESSAGE_BYTES); send a smaller image, ask for an encoded output format, "
                "or use the HTTP API"
            )


async def _internal(context: Context) -> None:
    log.exception("unhandled error in a gRPC method")
    await context.abort(grpc.StatusCode.INTERNAL, "the server failed on this request; it has been logged")

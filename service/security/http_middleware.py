"""The HTTP side: ASGI middlewares for request IDs, authentication and rate limits.

Order, outermost first: request ID (so every answer, refusals included, carries one), closing
connections whose body was refused unread, authentication, then the rate limit (keyed by the key
that authenticated, else the address).
Refusals are `ServiceError`s answered through the one HTTP error mapping.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError
from service.http.errors import service_error_response
from service.security.keys import KeyRing, presented_key
from service.security.rate_limit import TokenBuckets, shared_buckets
from service.security.request_id import RequestIdMiddleware
from service.security.settings import AuthSettings, RateLimitSettings

CLIENT_KEY = "filters.client"  # scope key: who the caller is, for the rate limit
CHALLENGE = 'Bearer realm="filters", error="invalid_token"'


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


async def _refuse(error: ServiceError, scope: Scope, receive: Receive, send: Send) -> None:
    response = service_error_response(error)
    if error.http_status == 401:
        response.headers["WWW-Authenticate"] = CHALLENGE
    await response(scope, receive, send)


class AuthMiddleware:
    """401 for calls without an accepted key, except on the open paths."""

    def __init__(self, app: ASGIApp, keys: KeyRing, open_paths: list[str]) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        presented = presented_key(_header(scope, b"authorization"), _header(scope, b"x-api-key"))
        try:
            scope[CLIENT_KEY] = self.keys.identify(presented)
        except ServiceError as error:
            await _refuse(error, scope, receive, send)
            return
        await self.app(scope, receive, send)


class RateLimitMiddleware:
    """429 with Retry-After for a client over its rate, except on the open paths."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets, open_paths: list[str]) -> None:
        self.app = app
        self.buckets = buckets
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        client = scope.get(CLIENT_KEY) or (scope.get("client") or ("unknown", 0))[0]
        try:
            self.buckets.check(str(client))
        except ServiceError as error:
            await _refuse(error, scope, receive, send)
            return
        await self.app(scope, receive, send)


class CloseUnreadBodyMiddleware:
    """`Connection: close` on an answer sent before a large or unbounded request body was read.

    A request refused early (401, 413, 429) leaves its body on the wire; uvicorn reads and
    discards the rest to keep the connection, so an endless chunked upload would be read forever.
    Bodies declared at most `DRAIN_BYTES` are drained (the client keeps its connection, which
    matters when many small requests are refused with 429); longer or chunked ones are cut.
    """

    DRAIN_BYTES = 1 << 20

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._worth_closing(scope):
            await self.app(scope, receive, send)
            return
        finished = False

        async def receive_tracked() -> Message:
            nonlocal finished
            message = await receive()
            finished = finished or message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not finished:
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive_tracked, send_closing)

    def _worth_closing(self, scope: Scope) -> bool:
        if _header(scope, b"transfer-encoding") is not None:
            return True
        declared = _header(scope, b"content-length")
        return declared is not None and (not declared.isdigit() or int(declared) > self.DRAIN_BYTES)


def install_http_security(app: FastAPI, auth: AuthSettings, rate_limit: RateLimitSettings) -> None:
    """Add the middlewares that are switched on (request IDs always) to `app`."""
    # add_middleware puts each new middleware outside the ones added before: innermost first.
    if rate_limit.enabled:
        app.add_middleware(RateLimitMiddleware, buckets=shared_buckets(rate_limit), open_paths=auth.open_paths)
    if auth.enabled:
        app.add_middleware(AuthMiddleware, keys=KeyRing(auth), open_paths=auth.open_paths)
    app.add_middleware(CloseUnreadBodyMiddleware)
    app.add_middleware(RequestIdMiddleware)

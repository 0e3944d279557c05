"""Request IDs: taken from the client's `X-Request-ID` (or made here), returned on the response,
and written on every log line of the request.

The ID lives in a context variable. Each HTTP request runs in its own task (uvicorn) and each gRPC
call in its own task (grpc.aio), so the variable is per request and is inherited by tasks the
request starts. Shared long-lived tasks (the batchers) are started in an empty context, so their
lines show `-`: a batch serves several requests.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
_VALID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")


def current_request_id() -> str:
    """The ID of the request being served, or `-` outside a request."""
    return _REQUEST_ID.get()


def accept_request_id(offered: str | None) -> str:
    """The client's ID if it is a sane token (1-128 printable, no spaces), else a new one."""
    if offered and _VALID.match(offered):
        return offered
    return uuid.uuid4().hex


def bind_request_id(offered: str | None) -> str:
    """Make `offered` (or a new ID) the current request's ID; returns it."""
    request_id = accept_request_id(offered)
    _REQUEST_ID.set(request_id)
    return request_id


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _REQUEST_ID.get()
        return True


def logging_config(level: str) -> dict[str, Any]:
    """`logging.config.dictConfig` for the server and uvicorn: one format, request IDs on every line."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stderr": {**handler, "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
        },
    }


class RequestIdMiddleware:
    """ASGI: binds the request ID for the request and sets `X-Request-ID` on its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope["headers"] if k == HEADER.encode()), None)
        request_id = bind_request_id(offered)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        # Not reset on the way out: an unhandled error is logged by the error middleware outside
        # this one, and should carry the ID; the request's task (and its context) ends anyway.
        await self.app(scope, receive, send_with_id)

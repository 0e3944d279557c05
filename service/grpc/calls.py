"""What every gRPC method needs from its call: the deadline, and cancellation of the ticket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from service.errors import Cancelled, DeadlineExceeded, Unprocessable
from service.scheduling.records import RequestTicket

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MIN_TILE, MAX_TILE = 8, 4096
DEADLINE_SLACK_S = 0.05  # the call's deadline and the ticket's are taken a moment apart


def time_left(context: Context, cap_s: float | None = None) -> float | None:
    """Seconds until the call's deadline (None without one), at most `cap_s`."""
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return cap_s
    return remaining if cap_s is None else min(remaining, cap_s)


def tile_of(value: int) -> int | None:
    """A request's tile override (0: the model's own)."""
    if value and not MIN_TILE <= value <= MAX_TILE:
        raise Unprocessable(f"tile {value} is out of range: use {MIN_TILE}-{MAX_TILE}, or 0 for the model's own")
    return value or None


@contextlib.asynccontextmanager
async def cancel_with_call(context: Context, ticket: RequestTicket) -> AsyncIterator[None]:
    """While the block runs, the call ending early (client cancel, call deadline) cancels `ticket`.

    grpc.aio cancels the method's task when its client cancels or the call's deadline passes, and
    `request_scope` cancels it when the ticket's deadline passes; the scheduler then drops the
    ticket's queued items. `context.cancelled()` does not tell these apart, so the clock does:
    DeadlineExceeded at either deadline, else Cancelled (the client went away), so the metrics
    count the outcome right.
    """
    try:
        yield
    except asyncio.CancelledError:
        ticket.cancelled = True
        call_left = context.time_remaining()
        ticket_left = ticket.deadline - asyncio.get_running_loop().time()
        if ticket_left <= DEADLINE_SLACK_S or (call_left is not None and call_left <= DEADLINE_SLACK_S):
            raise DeadlineExceeded("the request's deadline passed before it was answered") from None
        raise Cancelled("the client cancelled the call") from None

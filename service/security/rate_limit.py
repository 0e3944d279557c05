"""Per-client rate limit: a token bucket per client (API key id, else client address).

A bucket holds up to `burst` tokens and refills at `requests_per_s`; each request takes one or is
refused with 429 and the seconds until a token is back. At most `max_clients` buckets are kept
(least recently seen dropped first), so a flood of distinct addresses cannot grow memory.
HTTP and gRPC share one set of buckets (`shared_buckets`), so a client has one budget.
Single-threaded by design: every caller (HTTP and grpc.aio) runs on the one event loop.
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from service.errors import RateLimited
from service.security.settings import RateLimitSettings


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Token buckets keyed by client."""

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = settings.requests_per_s
        self.burst = float(settings.burst)
        self.max_clients = settings.max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def wait_s(self, client: str) -> float:
        """Take a token for `client`: 0.0 if it had one, else the seconds until it will."""
        now = self._clock()
        bucket = self._buckets.pop(client, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket  # most recently seen last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def check(self, client: str) -> None:
        """Take a token for `client` or raise `RateLimited` with the wait as Retry-After."""
        wait = self.wait_s(client)
        if wait > 0:
            raise RateLimited(
                f"client {client} is over its rate limit of {self.rate:g} requests/s (burst {self.burst:g}); "
                f"retry in {math.ceil(wait)} s",
                retry_after_s=wait,
            )


def shared_buckets(settings: RateLimitSettings) -> TokenBuckets:
    """The process's buckets for these settings: the same object for the HTTP and gRPC fronts."""
    return _buckets_for(settings.requests_per_s, settings.burst, settings.max_clients)


@functools.cache
def _buckets_for(requests_per_s: float, burst: int, max_clients: int) -> TokenBuckets:
    return TokenBuckets(RateLimitSettings(requests_per_s=requests_per_s, burst=burst, max_clients=max_clients))

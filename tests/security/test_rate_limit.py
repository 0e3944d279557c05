"""Per-client rate limit: the token bucket (plain, with a fake clock) and the live server (429 with
Retry-After over HTTP, RESOURCE_EXHAUSTED over gRPC, one budget per key across both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from service.errors import RateLimited
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from service.security.rate_limit import TokenBuckets
from service.security.settings import RateLimitSettings
from tests.support.data import png_bytes
from tests.support.live_server import LiveServer, start_server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(RateLimitSettings(requests_per_s=2.0, burst=3), clock)
    assert [buckets.wait_s("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.wait_s("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.wait_s("a") == 0.0
    assert buckets.wait_s("b") == 0.0, "clients have their own buckets"
    clock.now += 60
    assert [buckets.wait_s("a") for _ in range(4)][-1] > 0, "idle time refills up to the burst, not beyond"


def test_refusal_carries_the_wait_as_retry_after() -> None:
    buckets = TokenBuckets(RateLimitSettings(requests_per_s=0.25, burst=1), Clock())
    buckets.check("a")
    with pytest.raises(RateLimited) as refused:
        buckets.check("a")
    assert refused.value.retry_after_s == pytest.approx(4.0) and refused.value.http_status == 429
    assert "0.25 requests/s" in refused.value.message


def test_the_number_of_tracked_clients_is_bounded() -> None:
    buckets = TokenBuckets(RateLimitSettings(requests_per_s=1.0, burst=1, max_clients=100), Clock())
    for index in range(10_000):
        buckets.wait_s(f"10.0.{index // 256}.{index % 256}")
    assert len(buckets) == 100


@pytest.fixture(scope="module")
def limited(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Three requests at once per key, then one per 100 s: the tests never see a refill."""
    env = {
        "FILTERS_AUTH__API_KEYS": "key-a,key-b",
        "FILTERS_RATE_LIMIT__REQUESTS_PER_S": "0.01",
        "FILTERS_RATE_LIMIT__BURST": "3",
    }
    live = start_server(tiny_repository, tmp_path_factory.mktemp("limit-logs") / "server.log", env=env)
    yield live
    live.stop()


def test_a_client_over_its_rate_gets_429_and_others_do_not(limited: LiveServer) -> None:
    image = png_bytes(np.full((12, 12, 3), 70, np.uint8))

    def post(key: str) -> httpx.Response:
        return httpx.post(f"{limited.url}/v1/superres", content=image, headers={"x-api-key": key}, timeout=30)

    assert [post("key-a").status_code for _ in range(3)] == [200, 200, 200]
    refused = post("key-a")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert post("key-b").status_code == 200
    assert all(httpx.get(f"{limited.url}/healthz").status_code == 200 for _ in range(10)), "probes are not limited"

    with grpc.insecure_channel(limited.grpc_target) as channel, pytest.raises(grpc.RpcError) as over:
        stub = filters_pb2_grpc.FiltersStub(channel)
        stub.ListModels(pb.ListModelsRequest(), metadata=(("x-api-key", "key-a"),), timeout=30)
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, "HTTP and gRPC share the client's budget"
    assert int(dict(over.value.trailing_metadata())["retry-after"]) >= 1

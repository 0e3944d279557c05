"""Request IDs: taken from X-Request-ID (or made), returned on every answer (refusals and errors
included), and on the log lines of the request, over HTTP and gRPC."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.support.live_server import LiveServer, start_server


@pytest.fixture(scope="module")
def logged(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(
        tiny_repository, tmp_path_factory.mktemp("id-logs") / "server.log", {"FILTERS_LOG_LEVEL": "info"}
    )
    yield live
    live.stop()


def _log_lines(server: LiveServer, awaited: str) -> list[str]:
    """The server's log once it holds `awaited` (lines are written as they happen; a bounded wait)."""
    for _ in range(100):
        if awaited in server.log():
            break
        time.sleep(0.05)
    return server.log().splitlines()


def test_the_clients_id_comes_back_and_is_on_the_requests_log_lines(logged: LiveServer) -> None:
    response = httpx.post(f"{logged.url}/v1/superres", content=b"not an image", headers={"x-request-id": "req-415-abc"})
    assert response.status_code == 415 and response.headers["x-request-id"] == "req-415-abc"
    response = httpx.get(f"{logged.url}/v1/models", headers={"x-request-id": "req-models-1"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "req-models-1"
    lines = _log_lines(logged, "req-models-1")
    assert any("[req-415-abc]" in line and "POST /v1/superres" in line and " 415" in line for line in lines)
    assert any("[req-models-1]" in line and "GET /v1/models" in line for line in lines)


def test_an_id_is_made_when_the_client_sends_none_or_a_bad_one(server: LiveServer) -> None:
    made = {httpx.get(f"{server.url}/v1/models").headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in made)
    for bad in ("x" * 200, "two words", "line\tbreak"):
        answer = httpx.get(f"{server.url}/v1/models", headers={"x-request-id": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), bad


def test_errors_outside_the_routes_carry_the_id_too(server: LiveServer) -> None:
    for method, path in (("GET", "/v1/nothing"), ("DELETE", "/v1/superres"), ("POST", "/v1/superres?scale=x")):
        answer = httpx.request(method, f"{server.url}{path}", headers={"x-request-id": "edge-1"})
        assert answer.status_code >= 400 and answer.headers["x-request-id"] == "edge-1", path


def test_grpc_calls_get_their_id_back_and_logged(tiny_repository: Path, tmp_path: Path) -> None:
    live = start_server(tiny_repository, tmp_path / "server.log", {"FILTERS_LOG_LEVEL": "info"})
    try:
        with grpc.insecure_channel(live.grpc_target) as channel:
            stub = filters_pb2_grpc.FiltersStub(channel)
            _, call = stub.ListModels.with_call(
                pb.ListModelsRequest(), metadata=(("x-request-id", "grpc-7"),), timeout=30
            )
            _, anonymous = stub.ListModels.with_call(pb.ListModelsRequest(), timeout=30)
        assert dict(call.trailing_metadata())["x-request-id"] == "grpc-7"
        assert re.fullmatch(r"[0-9a-f]{32}", dict(anonymous.trailing_metadata())["x-request-id"])
    finally:
        live.stop()
    assert any("[grpc-7]" in line and "/filters.v1.Filters/ListModels" in line for line in live.log().splitlines())

"""API keys over HTTP and gRPC: from the environment and from a mounted secret file (rotated
live), open probe paths and health methods, 401 in the JSON error shape with WWW-Authenticate,
UNAUTHENTICATED over gRPC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.support.data import png_bytes
from tests.support.live_server import LiveServer, start_server

IMAGE = png_bytes(np.full((16, 16, 3), 90, np.uint8))


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "api-keys"
    path.write_text("# one key per line\nfile-key-1\n\n")
    return path


@pytest.fixture(scope="module")
def guarded(tiny_repository: Path, key_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"FILTERS_AUTH__API_KEYS": "env-key-1,env-key-2", "FILTERS_AUTH__API_KEYS_FILE": str(key_file)}
    live = start_server(tiny_repository, tmp_path_factory.mktemp("auth-logs") / "server.log", env=env)
    yield live
    live.stop()


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    return str(error["message"])


def test_no_key_is_401_with_a_hint(guarded: LiveServer) -> None:
    message = _refused(httpx.post(f"{guarded.url}/v1/superres", content=IMAGE))
    assert "Authorization: Bearer" in message and "X-API-Key" in message


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer wrong"},
        {"x-api-key": "env-key-1x"},
        {"authorization": "Basic ZW52LWtleS0xOg=="},
        {"authorization": "Bearer env-key"},
        {"x-api-key": ""},
    ],
)
def test_wrong_keys_are_401(guarded: LiveServer, headers: dict[str, str]) -> None:
    _refused(httpx.post(f"{guarded.url}/v1/superres", content=IMAGE, headers=headers))


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer env-key-1"},
        {"authorization": "bearer env-key-2"},
        {"x-api-key": "env-key-2"},
        {"authorization": "Bearer file-key-1"},
    ],
)
def test_accepted_keys_are_served(guarded: LiveServer, headers: dict[str, str]) -> None:
    response = httpx.post(f"{guarded.url}/v1/superres", content=IMAGE, headers=headers, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_probes_and_metrics_are_open_and_the_rest_is_not(guarded: LiveServer) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{guarded.url}{path}").status_code == 200, path
    for path in ("/v1/models", "/docs", "/openapi.json", "/v1/nothing"):
        _refused(httpx.get(f"{guarded.url}{path}"))


def test_a_rotated_secret_file_takes_effect_without_a_restart(guarded: LiveServer, key_file: Path) -> None:
    def status(key: str) -> int:
        return httpx.get(f"{guarded.url}/v1/models", headers={"x-api-key": key}).status_code

    assert status("file-key-1") == 200
    key_file.write_text("file-key-2\n")
    deadline = time.monotonic() + 30  # the file is re-checked at most once a second
    while status("file-key-2") != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status("file-key-2") == 200
    assert status("file-key-1") == 401
    assert status("env-key-1") == 200, "environment keys stay"


def test_keys_never_reach_the_log(guarded: LiveServer) -> None:
    httpx.get(f"{guarded.url}/v1/models", headers={"authorization": "Bearer env-key-1"})
    log = guarded.log()
    assert "env-key-1" not in log and "file-key" not in log


def test_a_missing_key_file_stops_start_up(tiny_repository: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="auth.api_keys_file .*does not exist"):
        start_server(tiny_repository, tmp_path / "log", env={"FILTERS_AUTH__API_KEYS_FILE": str(tmp_path / "none")})


def _grpc_models(server: LiveServer, metadata: tuple[tuple[str, str], ...]) -> pb.ListModelsResponse:
    with grpc.insecure_channel(server.grpc_target) as channel:
        return filters_pb2_grpc.FiltersStub(channel).ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=30)


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer wrong"),), (("x-api-key", "env-key-"),)])
def test_grpc_without_an_accepted_key_is_unauthenticated(
    guarded: LiveServer, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _grpc_models(guarded, metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer <key>" in refused.value.details()


@pytest.mark.parametrize("metadata", [(("authorization", "Bearer env-key-1"),), (("x-api-key", "env-key-2"),)])
def test_grpc_with_an_accepted_key_is_served(guarded: LiveServer, metadata: tuple[tuple[str, str], ...]) -> None:
    assert {m.name for m in _grpc_models(guarded, metadata).models} >= {"tiny-x2", "tiny-x4"}


def test_grpc_health_is_open(guarded: LiveServer) -> None:
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

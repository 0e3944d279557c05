"""TLS on both front ends from FILTERS_TLS__CERT_FILE / FILTERS_TLS__KEY_FILE (a throwaway CA)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.support.data import png_bytes
from tests.support.live_server import LiveServer, start_server


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(
    tiny_repository: Path, authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("tls")
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    certificate.private_key_pem.write_to_path(str(folder / "key.pem"))
    certificate.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    env = {"FILTERS_TLS__CERT_FILE": str(folder / "cert.pem"), "FILTERS_TLS__KEY_FILE": str(folder / "key.pem")}
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    live = start_server(tiny_repository, folder / "server.log", env=env, tls=client_context)
    yield live
    live.stop()


def test_https_serves_with_the_configured_certificate(tls_server: LiveServer, authority: trustme.CA) -> None:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    image = png_bytes(np.full((12, 12, 3), 40, np.uint8))
    response = httpx.post(f"{tls_server.url}/v1/superres", content=image, verify=context, timeout=30)
    assert tls_server.url.startswith("https://")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_an_untrusted_client_and_plain_http_are_refused(tls_server: LiveServer) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_server.url}/healthz")  # the system CAs do not know our throwaway CA
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/healthz", timeout=5)


def test_grpc_serves_tls_with_the_same_certificate(tls_server: LiveServer, authority: trustme.CA) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=authority.cert_pem.bytes())
    with grpc.secure_channel(tls_server.grpc_target, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        models = filters_pb2_grpc.FiltersStub(channel).ListModels(pb.ListModelsRequest(), timeout=30)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert {m.name for m in models.models} >= {"tiny-x2", "tiny-x4"}
    with grpc.insecure_channel(tls_server.grpc_target) as plain, pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_a_key_that_does_not_match_the_certificate_stops_start_up(
    tiny_repository: Path, authority: trustme.CA, tmp_path: Path
) -> None:
    first, second = authority.issue_cert("127.0.0.1"), authority.issue_cert("127.0.0.1")
    first.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    second.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    env = {"FILTERS_TLS__CERT_FILE": str(tmp_path / "cert.pem"), "FILTERS_TLS__KEY_FILE": str(tmp_path / "key.pem")}
    with pytest.raises(RuntimeError, match="(?s)exited with 2.*tls: .* are not a PEM certificate and its key"):
        start_server(tiny_repository, tmp_path / "server.log", env=env)


def test_half_a_tls_configuration_is_refused(tiny_repository: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="set both tls.cert_file and tls.key_file"):
        start_server(tiny_repository, tmp_path / "server.log", env={"FILTERS_TLS__CERT_FILE": str(tmp_path / "c")})

"""`filters.v1.Filters` unary calls against the live server: same answers as HTTP, clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from service.client import FiltersClient
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, noise, pixels, raw
from tests.support.data import decode_rgb, png_bytes
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def stub(server: LiveServer) -> Iterator[filters_pb2_grpc.FiltersStub]:
    with channel(server) as ch:
        yield filters_pb2_grpc.FiltersStub(ch)


def _http_superres(server: LiveServer, rgb: np.ndarray, **params: object) -> np.ndarray:
    response = httpx.post(f"{server.url}/v1/superres", params=params, content=png_bytes(rgb[:, :, ::-1]), timeout=60)
    assert response.status_code == 200, response.text
    return decode_rgb(response.content)


def test_raw_and_encoded_superres_equal_the_http_answer(server: LiveServer, stub: filters_pb2_grpc.FiltersStub) -> None:
    rgb = noise(70, 90, seed=3)
    expected = _http_superres(server, rgb, scale=4)
    raw_answer = stub.Superres(pb.SuperresRequest(image=raw(rgb), scale=4), timeout=60)
    assert raw_answer.model == "tiny-x4"
    assert np.array_equal(pixels(raw_answer.image), expected)
    encoded = stub.Superres(pb.SuperresRequest(image=pb.Image(encoded=png_bytes(rgb[:, :, ::-1])), scale=4), timeout=60)
    assert encoded.image.WhichOneof("data") == "encoded"
    assert np.array_equal(decode_rgb(encoded.image.encoded), expected)
    assert {"decode", "queue", "compute", "encode", "total"} <= set(encoded.timing_ms)


def test_python_client_superres_and_models(server: LiveServer) -> None:
    rgb = noise(40, 30, seed=4)
    with FiltersClient(server.grpc_target) as client:
        result = client.superres(rgb, model="tiny-x2", tile=16, timeout_s=60)
        jpeg = client.superres(png_bytes(rgb[:, :, ::-1]), format="jpeg", quality=80, timeout_s=60)
        models = {m.name: m for m in client.list_models()}
        statuses = {name: client.health(name) for name in ("", "filters.v1.Filters", "inference.GRPCInferenceService")}
    assert isinstance(result.image, np.ndarray) and result.image.shape == (80, 60, 3)
    assert np.array_equal(result.image, _http_superres(server, rgb, model="tiny-x2", tile=16))
    assert isinstance(jpeg.image, bytes) and jpeg.image[:2] == b"\xff\xd8"
    assert models["tiny-x4"].scale == 4 and models["tiny-x4"].ready and models["tiny-x4"].runtime == "onnxruntime"
    assert set(statuses.values()) == {"SERVING"}


@pytest.mark.parametrize(
    ("request_", "code", "says"),
    [
        (pb.SuperresRequest(), grpc.StatusCode.INVALID_ARGUMENT, "has no image"),
        (pb.SuperresRequest(image=pb.Image(encoded=b"hello")), grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
        (
            pb.SuperresRequest(image=pb.Image(encoded=png_bytes(np.zeros((8, 8, 3), np.uint8))[:60])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "could not be decoded",
        ),
        (
            pb.SuperresRequest(image=pb.Image(raw=pb.RawImage(width=4, height=4, rgb=b"\x00" * 47))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "which is 48 bytes, but image.raw.rgb has 47",
        ),
        (
            pb.SuperresRequest(image=pb.Image(raw=pb.RawImage(width=5000, height=5000, rgb=b""))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "5000x5000",
        ),
        (pb.SuperresRequest(image=raw(noise(8, 8)), scale=3), grpc.StatusCode.NOT_FOUND, "loaded scales: [2, 4]"),
        (pb.SuperresRequest(image=raw(noise(8, 8)), model="nope"), grpc.StatusCode.NOT_FOUND, "no model named 'nope'"),
        (pb.SuperresRequest(image=raw(noise(8, 8)), tile=8), grpc.StatusCode.INVALID_ARGUMENT, "at least 9"),
        (
            pb.SuperresRequest(image=raw(noise(8, 8)), output=pb.OutputOptions(format=pb.IMAGE_FORMAT_PNG, quality=50)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "zlib level 0-9",
        ),
        (
            pb.SuperresRequest(image=raw(noise(8, 8)), model="tiny-x2", scale=4),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not x4",
        ),
    ],
)
def test_bad_requests_get_a_clear_status_and_the_server_keeps_serving(
    stub: filters_pb2_grpc.FiltersStub, request_: pb.SuperresRequest, code: grpc.StatusCode, says: str
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        stub.Superres(request_, timeout=30)
    assert failure.value.code() == code
    assert says in failure.value.details()
    assert "Traceback" not in failure.value.details()
    trailing = dict(failure.value.trailing_metadata() or ())
    assert trailing.get("filters-error-code")
    assert stub.Superres(pb.SuperresRequest(image=raw(noise(8, 8))), timeout=30).model == "tiny-x2"


def test_tasks_without_a_loaded_model_say_what_is_loaded(stub: filters_pb2_grpc.FiltersStub) -> None:
    calls = {
        "style": lambda: stub.Stylize(pb.StylizeRequest(image=raw(noise(8, 8))), timeout=10),
        "interpolate": lambda: stub.Interpolate(
            pb.InterpolateRequest(first=raw(noise(8, 8)), second=raw(noise(8, 8))), timeout=10
        ),
        "detect": lambda: stub.Detect(pb.DetectRequest(image=raw(noise(8, 8))), timeout=10),
    }
    for task, call in calls.items():
        with pytest.raises(grpc.RpcError) as failure:
            call()
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
        assert f"no {task} model is loaded" in failure.value.details() and "tiny-x2" in failure.value.details()


def test_standard_health_and_reflection(server: LiveServer) -> None:
    with channel(server) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
        )
        with pytest.raises(grpc.RpcError) as unknown:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        database = ProtoReflectionDescriptorDatabase(ch)
        services = set(database.get_services())
        assert {"filters.v1.Filters", "inference.GRPCInferenceService", "grpc.health.v1.Health"} <= services
        described = database.FindFileContainingSymbol("inference.GRPCInferenceService")
        assert described.package == "inference" and "ModelInfer" in [m.name for m in described.service[0].method]
        assert database.FindFileContainingSymbol("filters.v1.FrameResult").name == "filters/v1/filters.proto"


def test_reflection_streams_the_client_abandons_do_not_crash_the_server(server: LiveServer) -> None:
    """Each lookup opens a reflection stream that the client drops after one answer. The access log's
    status read (`context.code()`) on such a torn-down call used to crash the server (a segfault in
    grpc, about once per few hundred lookups)."""
    for _ in range(300):
        with channel(server) as ch:  # closing the channel tears the dropped stream down
            database = ProtoReflectionDescriptorDatabase(ch)  # a fresh one: no cached answer
            assert database.FindFileContainingSymbol("filters.v1.FrameResult").name == "filters/v1/filters.proto"
    with channel(server) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING

"""The unmodified `tritonclient` (HTTP and gRPC) against the live server: health, metadata, the
repository index, inference (JSON, binary, gRPC, streaming) and errors."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.grpc.support import noise
from tests.support.data import decode_rgb, png_bytes
from tests.support.live_server import LiveServer

tritonclient = pytest.importorskip("tritonclient")
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

KINDS = ["http", "grpc"]


@pytest.fixture(scope="module")
def clients(server: LiveServer) -> Iterator[dict[str, Any]]:
    http = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    grpc = grpcclient.InferenceServerClient(server.grpc_target)
    yield {"http": http, "grpc": grpc}
    http.close()
    grpc.close()


def _reference(server: LiveServer, rgb: np.ndarray, model: str) -> np.ndarray:
    """The same image through the HTTP API (/v1): the answer the protocol must match exactly."""
    response = httpx.post(
        f"{server.url}/v1/superres", params={"model": model}, content=png_bytes(rgb[:, :, ::-1]), timeout=60
    )
    assert response.status_code == 200, response.text
    return decode_rgb(response.content)


def _input(kind: str, rgb: np.ndarray, binary: bool = True) -> Any:
    module = httpclient if kind == "http" else grpcclient
    tensor = module.InferInput("IMAGE", list(rgb.shape), "UINT8")
    if kind == "http":
        tensor.set_data_from_numpy(rgb, binary_data=binary)
    else:
        tensor.set_data_from_numpy(rgb)
    return tensor


@pytest.mark.parametrize("kind", KINDS)
def test_health_and_server_metadata(clients: dict[str, Any], kind: str) -> None:
    client = clients[kind]
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("tiny-x2") and client.is_model_ready("tiny-x4", "1")
    assert not client.is_model_ready("tiny-x2", "7")
    meta = client.get_server_metadata()
    name, extensions = (meta["name"], meta["extensions"]) if kind == "http" else (meta.name, meta.extensions)
    assert name == "filters-service" and "binary_tensor_data" in extensions


@pytest.mark.parametrize("kind", KINDS)
def test_model_metadata_config_and_repository_index(clients: dict[str, Any], kind: str) -> None:
    client = clients[kind]
    as_json = {} if kind == "http" else {"as_json": True}  # the HTTP client always answers JSON
    meta = client.get_model_metadata("tiny-x4", **as_json)
    assert meta["name"] == "tiny-x4" and meta["versions"] == ["1"]
    for tensors in (meta["inputs"], meta["outputs"]):
        assert [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in tensors] == [
            ("IMAGE", "UINT8", [-1, -1, 3])
        ]
    config = client.get_model_config("tiny-x4", **as_json)
    config = config.get("config", config)  # gRPC wraps it in ModelConfigResponse
    assert config["name"] == "tiny-x4" and config["backend"] == "onnxruntime"
    assert config["input"][0]["data_type"] == "TYPE_UINT8"
    assert config["parameters"]["scale"]["string_value"] == "4"
    index = client.get_model_repository_index(**as_json)
    entries = index if kind == "http" else index["models"]
    assert {(e["name"], e["state"]) for e in entries} == {("tiny-x2", "READY"), ("tiny-x4", "READY")}


@pytest.mark.parametrize(("kind", "binary"), [("http", True), ("http", False), ("grpc", True)])
def test_infer_equals_the_http_api(server: LiveServer, clients: dict[str, Any], kind: str, binary: bool) -> None:
    rgb = noise(37, 53, seed=11)
    module = httpclient if kind == "http" else grpcclient
    outputs = [module.InferRequestedOutput("IMAGE", binary_data=binary)] if kind == "http" else None
    result = clients[kind].infer("tiny-x4", [_input(kind, rgb, binary)], outputs=outputs, request_id="r-1")
    upscaled = result.as_numpy("IMAGE")
    assert upscaled.dtype == np.uint8 and upscaled.shape == (148, 212, 3)
    assert np.array_equal(upscaled, _reference(server, rgb, "tiny-x4"))
    response = result.get_response()
    assert (response["id"] if kind == "http" else response.id) == "r-1"


@pytest.mark.parametrize("kind", KINDS)
def test_a_leading_batch_of_one_is_accepted_and_kept(clients: dict[str, Any], kind: str) -> None:
    rgb = noise(20, 30, seed=12)
    plain = clients[kind].infer("tiny-x2", [_input(kind, rgb)]).as_numpy("IMAGE")
    batched = clients[kind].infer("tiny-x2", [_input(kind, rgb[np.newaxis])]).as_numpy("IMAGE")
    assert batched.shape == (1, 40, 60, 3) and np.array_equal(batched[0], plain)


def test_model_stream_infer_answers_in_order_with_errors_in_band(server: LiveServer, clients: dict[str, Any]) -> None:
    client = clients["grpc"]
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    frames = [noise(16 + 8 * i, 24, seed=20 + i) for i in range(4)]
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        for i, rgb in enumerate(frames):
            client.async_stream_infer("tiny-x2", [_input("grpc", rgb)], request_id=f"f{i}")
        client.async_stream_infer("tiny-x2", [_input("grpc", noise(8, 8, seed=1)[:, :, :2])], request_id="bad")
        client.async_stream_infer("tiny-x2", [_input("grpc", frames[0])], request_id="after")
        received = [answers.get(timeout=60) for _ in range(len(frames) + 2)]
    finally:
        client.stop_stream()
    ids = [r.get_response().id if r is not None else "error" for r, _ in received]
    assert ids == ["f0", "f1", "f2", "f3", "error", "after"]
    for (result, _), rgb in zip(received, frames):
        assert np.array_equal(result.as_numpy("IMAGE"), _reference(server, rgb, "tiny-x2"))
    assert "must have shape [any, any, 3]" in str(received[4][1])


@pytest.mark.parametrize("kind", KINDS)
def test_errors_name_the_problem(clients: dict[str, Any], kind: str) -> None:
    client = clients[kind]
    module = httpclient if kind == "http" else grpcclient
    floats = module.InferInput("IMAGE", [4, 4, 3], "FP32")
    floats.set_data_from_numpy(np.zeros((4, 4, 3), np.float32))
    wrong_name = module.InferInput("PIXELS", [4, 4, 3], "UINT8")
    wrong_name.set_data_from_numpy(np.zeros((4, 4, 3), np.uint8))
    cases = [
        (lambda: client.get_model_metadata("nope"), "no model named 'nope'", "404", "NOT_FOUND"),
        (lambda: client.infer("nope", [_input(kind, noise(4, 4))]), "no model named 'nope'", "404", "NOT_FOUND"),
        (lambda: client.infer("tiny-x2", [floats]), "must be UINT8, got FP32", "400", "INVALID_ARGUMENT"),
        (lambda: client.infer("tiny-x2", [wrong_name]), "needs input(s) ['IMAGE']", "400", "INVALID_ARGUMENT"),
        (
            lambda: client.infer("tiny-x2", [_input(kind, noise(4, 4)[np.newaxis].repeat(2, 0))]),
            "a batch of 2",
            "400",
            "INVALID_ARGUMENT",
        ),
        (
            lambda: client.infer("tiny-x2", [_input(kind, noise(4, 4))], model_version="3"),
            "only version 1",
            "404",
            "NOT_FOUND",
        ),
        (
            lambda: client.infer("tiny-x2", [_input(kind, noise(4, 4))], parameters={"tile": 4}),
            "parameter 'tile'",
            "422",
            "INVALID_ARGUMENT",
        ),
    ]
    for call, says, http_status, grpc_status in cases:
        with pytest.raises(InferenceServerException) as failure:
            call()
        assert says in failure.value.message()
        assert failure.value.status() == (http_status if kind == "http" else f"StatusCode.{grpc_status}")
    assert clients[kind].infer("tiny-x2", [_input(kind, noise(4, 4))]).as_numpy("IMAGE").shape == (8, 8, 3)


def test_unsupported_protocol_features_say_so(clients: dict[str, Any]) -> None:
    with pytest.raises(InferenceServerException) as failure:
        clients["grpc"].get_inference_statistics("tiny-x2")
    assert failure.value.status() == "StatusCode.UNIMPLEMENTED" and "/metrics" in failure.value.message()


def test_the_timeout_parameter_is_a_deadline(server: LiveServer, clients: dict[str, Any]) -> None:
    big = noise(1200, 1200, seed=5)
    for kind in KINDS:
        with pytest.raises(InferenceServerException) as late:
            clients[kind].infer("tiny-x2", [_input(kind, big)], parameters={"tile": 16}, timeout=200_000)
        assert "deadline" in late.value.message()
        assert late.value.status() == ("504" if kind == "http" else "StatusCode.DEADLINE_EXCEEDED")


def test_compressed_http_requests_are_understood(server: LiveServer, clients: dict[str, Any]) -> None:
    rgb = noise(12, 20, seed=13)
    result = clients["http"].infer(
        "tiny-x2", [_input("http", rgb)], request_compression_algorithm="gzip", response_compression_algorithm="gzip"
    )
    assert np.array_equal(result.as_numpy("IMAGE"), _reference(server, rgb, "tiny-x2"))


def test_v2_http_errors_use_the_protocol_shape(server: LiveServer) -> None:
    answers = [
        httpx.post(f"{server.url}/v2/models/tiny-x2/infer", content=b"{oops", timeout=30),
        httpx.get(f"{server.url}/v2/models/nope/ready", timeout=30),
        httpx.post(f"{server.url}/v2/repository/index", content=b'{"ready": "yes"}', timeout=30),
    ]
    assert [a.status_code for a in answers] == [400, 404, 400]
    for answer in answers:
        assert set(answer.json()) == {"error"} and isinstance(answer.json()["error"], str)
    assert "not valid JSON" in answers[0].json()["error"]
    assert httpx.get(f"{server.url}/v2/health/live", timeout=30).status_code == 200

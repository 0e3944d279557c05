"""gRPC under limits on servers of their own: overload, the message limit on answers, a taken
port at start-up, and the SIGTERM drain (health NOT_SERVING, new calls refused, calls in flight
finish)."""

from __future__ import annotations

import queue
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, metric, noise, raw
from tests.support.live_server import LiveServer, start_server
from tests.support.tiny_models import write_sr_entry

SLOW = {"features": 48, "max_batch_size": 1, "max_queued_requests": 1}
BIG_CALL = pb.SuperresRequest(image=raw(noise(800, 800)), tile=32)  # 1.9 MB: under the 2 MiB limit below


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One slow model that admits one request at a time; a 2 MiB gRPC message limit."""
    root = tmp_path_factory.mktemp("limited")
    write_sr_entry(root / "repo", "slow-x2", 2, default=True, **SLOW)  # type: ignore[arg-type]
    env = {"FILTERS_CPU_THREADS": "1", "FILTERS_GRPC_MAX_MESSAGE_BYTES": str(2 * 2**20)}
    live = start_server(root / "repo", root / "server.log", env=env)
    yield live
    live.stop()


def _wait_in_flight(server: LiveServer, model: str, count: int, call: grpc.Future | None = None) -> None:
    """Wait until `count` requests of `model` are in flight (failing fast if `call` ended instead)."""
    deadline = time.monotonic() + 120
    while metric(server, "filters_requests_in_flight", model=model) != count:
        assert call is None or not call.done(), f"the call ended early: {call.exception()}"
        assert time.monotonic() < deadline, f"never {count} requests in flight"
        time.sleep(0.02)


def test_overload_is_resource_exhausted_with_retry_after(limited: LiveServer) -> None:
    with channel(limited) as ch:
        stub = filters_pb2_grpc.FiltersStub(ch)
        first = stub.Superres.future(BIG_CALL, timeout=120)
        _wait_in_flight(limited, "slow-x2", 1, first)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Superres(pb.SuperresRequest(image=raw(noise(8, 8))), timeout=30)
        first.cancel()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "requests in progress, its limit" in refused.value.details()
    trailing = dict(refused.value.trailing_metadata() or ())
    assert int(trailing["retry-after"]) >= 1 and trailing["filters-error-code"] == "overloaded"


def test_an_answer_over_the_message_limit_says_what_to_do(limited: LiveServer) -> None:
    _wait_in_flight(limited, "slow-x2", 0)
    with channel(limited) as ch:
        stub = filters_pb2_grpc.FiltersStub(ch)
        with pytest.raises(grpc.RpcError) as too_big:
            stub.Superres(pb.SuperresRequest(image=raw(noise(450, 450))), timeout=120)  # 2.4 MB of raw result
        assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "FILTERS_GRPC_MAX_MESSAGE_BYTES" in too_big.value.details()
        assert stub.Superres(pb.SuperresRequest(image=raw(noise(8, 8))), timeout=30).model == "slow-x2"


def test_a_taken_grpc_port_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    write_sr_entry(tmp_path / "repo", "tiny-x2", 2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError) as failed:
            start_server(tmp_path / "repo", tmp_path / "server.log", env={"FILTERS_GRPC_PORT": str(port)})
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in str(failed.value)


def test_sigterm_drains_grpc_calls_and_reports_not_serving(tmp_path: Path) -> None:
    write_sr_entry(tmp_path / "repo", "drain-x2", 2, default=True, features=48, max_batch_size=1)
    env = {"FILTERS_CPU_THREADS": "1", "FILTERS_DRAIN_ANNOUNCE_S": "5"}  # the steps below happen within it
    server = start_server(tmp_path / "repo", tmp_path / "server.log", env=env)
    try:
        with channel(server) as ch:
            stub = filters_pb2_grpc.FiltersStub(ch)
            health = health_pb2_grpc.HealthStub(ch)
            frames: queue.Queue[pb.FrameStreamRequest | None] = queue.Queue()
            frames.put(pb.FrameStreamRequest(config=pb.StreamConfig()))
            frames.put(pb.FrameStreamRequest(frame=pb.Frame(sequence=0, image=raw(noise(8, 8)))))
            stream = stub.StreamFrames(iter(frames.get, None), timeout=120)
            assert next(stream).sequence == 0  # a live stream, open across the SIGTERM
            in_flight = stub.Superres.future(BIG_CALL, timeout=120)
            _wait_in_flight(server, "drain-x2", 1, in_flight)
            server.process.send_signal(signal.SIGTERM)
            status = health_pb2.HealthCheckResponse.SERVING
            while status == health_pb2.HealthCheckResponse.SERVING:
                status = health.Check(health_pb2.HealthCheckRequest(service="filters.v1.Filters"), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as refused:
                stub.Superres(pb.SuperresRequest(image=raw(noise(8, 8))), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in refused.value.details()
            frames.put(pb.FrameStreamRequest(frame=pb.Frame(sequence=1, image=raw(noise(8, 8)))))
            with pytest.raises(grpc.RpcError) as ended:
                next(stream)
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE and "reconnect" in ended.value.details()
            frames.put(None)  # ends the request iterator
            assert in_flight.result(timeout=120).image.raw.width == 1600
        assert server.process.wait(60) == 0
    finally:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)

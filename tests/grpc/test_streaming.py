"""Frame streams and the limits of the gRPC API against the live server: order under concurrency,
backpressure, cancellation, deadlines, large messages, and stream protocol errors."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import CHANNEL_OPTIONS, channel, metric, noise, pixels, png_with_padding, raw
from tests.support.data import decode_rgb
from tests.support.live_server import LiveServer

RAW = pb.OutputOptions(format=pb.IMAGE_FORMAT_RAW)


@pytest.fixture(scope="module")
def stub(server: LiveServer) -> Iterator[filters_pb2_grpc.FiltersStub]:
    with channel(server) as ch:
        yield filters_pb2_grpc.FiltersStub(ch)


def _stream(config: pb.StreamConfig, frames: list[np.ndarray], start: int = 0) -> Iterator[pb.FrameStreamRequest]:
    yield pb.FrameStreamRequest(config=config)
    for i, rgb in enumerate(frames):
        yield pb.FrameStreamRequest(frame=pb.Frame(sequence=start + 2 * i, image=raw(rgb)))


def test_concurrent_streams_get_their_own_frames_back_in_order(
    server: LiveServer, stub: filters_pb2_grpc.FiltersStub
) -> None:
    # Large and small frames alternate, so later frames finish before earlier ones inside a stream.
    streams = [[noise(24 + 56 * ((i + s) % 2), 32, seed=100 * s + i) for i in range(10)] for s in range(3)]
    expected = [
        [pixels(stub.Superres(pb.SuperresRequest(image=raw(f), scale=2), timeout=60).image) for f in frames]
        for frames in streams
    ]

    async def run_stream(frames: list[np.ndarray], start: int) -> list[pb.FrameResult]:
        async with grpc.aio.insecure_channel(server.grpc_target, options=CHANNEL_OPTIONS) as ch:
            call = filters_pb2_grpc.FiltersStub(ch).StreamFrames(
                _stream(pb.StreamConfig(scale=2, max_in_flight=6), frames, start), timeout=120
            )
            return [result async for result in call]

    async def run_all() -> list[list[pb.FrameResult]]:
        return list(await asyncio.gather(*(run_stream(frames, 1000 * s) for s, frames in enumerate(streams))))

    for s, results in enumerate(asyncio.run(run_all())):
        assert [r.sequence for r in results] == [1000 * s + 2 * i for i in range(10)]
        for result, want in zip(results, expected[s], strict=True):
            assert result.model == "tiny-x2"
            assert np.array_equal(pixels(result.image), want)


def _server_rss_mb(server: LiveServer) -> float:
    with open(f"/proc/{server.process.pid}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _until_still(read: object, settle_s: float = 1.5, limit_s: float = 60.0) -> None:
    """Wait until `read()` stops changing for `settle_s` (the stalled stream has filled its buffers)."""
    assert callable(read)
    last, since, deadline = read(), time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() < deadline and time.monotonic() - since < settle_s:
        time.sleep(0.25)
        now = read()
        if now != last:
            last, since = now, time.monotonic()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the server's RSS from /proc")
def test_a_client_that_stops_reading_does_not_grow_server_memory(
    server: LiveServer, stub: filters_pb2_grpc.FiltersStub
) -> None:
    side, count, window = 256, 200, 4
    frame = noise(side, side, seed=7)
    out_bytes, in_bytes = (2 * side) ** 2 * 3, side * side * 3
    # Warm up this frame shape first, so allocations of a first run are not counted.
    list(stub.StreamFrames(_stream(pb.StreamConfig(scale=2, output=RAW), [frame] * 3), timeout=60))
    done_before, rss_before = (
        metric(server, "filters_requests_total", model="tiny-x2", status="200"),
        _server_rss_mb(server),
    )
    pulled = 0

    def requests() -> Iterator[pb.FrameStreamRequest]:
        nonlocal pulled
        yield pb.FrameStreamRequest(config=pb.StreamConfig(scale=2, output=RAW, max_in_flight=window))
        for i in range(count):
            pulled += 1
            yield pb.FrameStreamRequest(frame=pb.Frame(sequence=i, image=raw(frame)))

    responses = stub.StreamFrames(requests(), timeout=300)  # nothing is read from it yet

    def answered() -> float:
        return metric(server, "filters_requests_total", model="tiny-x2", status="200") - done_before

    _until_still(lambda: (pulled, answered()))
    stalled_answers, stalled_pulls = answered(), pulled
    rss_growth = _server_rss_mb(server) - rss_before
    print(f"stalled: client pushed {stalled_pulls}, server answered {stalled_answers:.0f}, RSS +{rss_growth:.0f} MB")
    # What HTTP/2 flow control lets sit in socket and transport buffers: bounded, and far below
    # the 200 frames (157 MB of results) an unbounded server would have made by now.
    buffered = math.ceil(16 * 2**20 / out_bytes)
    assert stalled_answers <= window + buffered
    assert stalled_pulls <= stalled_answers + window + math.ceil(16 * 2**20 / in_bytes)
    assert rss_growth < 64, f"server RSS grew {rss_growth:.0f} MB while the client did not read"
    sequences = [r.sequence for r in responses]  # now read everything: nothing was lost
    assert sequences == list(range(count))


def test_cancelling_a_call_drops_its_queued_work(server: LiveServer, stub: filters_pb2_grpc.FiltersStub) -> None:
    side = 1200
    tiles = math.ceil(side / 8) ** 2  # tile 16 with overlap 4: 8 new pixels per tile side
    executed_before = metric(server, "filters_items_executed_total", model="tiny-x2")
    gone_before = metric(server, "filters_dropped_total", model="tiny-x2", reason="client_gone")
    call = stub.Superres.future(pb.SuperresRequest(image=raw(noise(side, side)), scale=2, tile=16), timeout=120)
    while metric(server, "filters_items_executed_total", model="tiny-x2") == executed_before and not call.done():
        time.sleep(0.02)
    assert call.cancel()
    while metric(server, "filters_requests_in_flight", model="tiny-x2") > 0:
        time.sleep(0.05)
    executed = metric(server, "filters_items_executed_total", model="tiny-x2") - executed_before
    assert executed < tiles / 2, f"{executed} of {tiles} tiles ran after the client cancelled"
    assert metric(server, "filters_dropped_total", model="tiny-x2", reason="client_gone") == gone_before + 1
    assert stub.Superres(pb.SuperresRequest(image=raw(noise(8, 8))), timeout=30).model == "tiny-x2"


def test_cancelling_a_stream_drops_the_frames_in_flight(server: LiveServer) -> None:
    frames = [noise(600, 600, seed=i) for i in range(4)]
    per_frame = math.ceil(600 / 8) ** 2
    executed_before = metric(server, "filters_items_executed_total", model="tiny-x2")

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(server.grpc_target, options=CHANNEL_OPTIONS) as ch:
            call = filters_pb2_grpc.FiltersStub(ch).StreamFrames(
                _stream(pb.StreamConfig(scale=2, tile=16, max_in_flight=4), frames), timeout=120
            )
            while metric(server, "filters_items_executed_total", model="tiny-x2") == executed_before:
                await asyncio.sleep(0.02)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call.read()

    asyncio.run(scenario())
    while metric(server, "filters_requests_in_flight", model="tiny-x2") > 0:
        time.sleep(0.05)
    executed = metric(server, "filters_items_executed_total", model="tiny-x2") - executed_before
    assert executed < len(frames) * per_frame / 2


def test_deadlines_answer_deadline_exceeded(server: LiveServer, stub: filters_pb2_grpc.FiltersStub) -> None:
    big = pb.SuperresRequest(image=raw(noise(1200, 1200)), scale=2, tile=16)
    late_before = metric(server, "filters_requests_total", model="tiny-x2", status="504")
    with pytest.raises(grpc.RpcError) as call_deadline:
        stub.Superres(big, timeout=0.3)
    assert call_deadline.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    config = pb.StreamConfig(scale=2, tile=16, frame_timeout_s=0.3)
    with pytest.raises(grpc.RpcError) as frame_deadline:
        list(stub.StreamFrames(_stream(config, [noise(1200, 1200)], start=5), timeout=60))
    assert frame_deadline.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "frame 5: " in frame_deadline.value.details() and "deadline" in frame_deadline.value.details()
    while metric(server, "filters_requests_in_flight", model="tiny-x2") > 0:
        time.sleep(0.05)
    assert metric(server, "filters_requests_total", model="tiny-x2", status="504") == late_before + 2
    assert stub.Superres(pb.SuperresRequest(image=raw(noise(8, 8))), timeout=30).model == "tiny-x2"


def test_messages_near_64_mib_pass_and_over_the_limit_are_refused(stub: filters_pb2_grpc.FiltersStub) -> None:
    rgb = noise(32, 48, seed=9)
    large = png_with_padding(rgb, 60 * 2**20)  # a 60 MiB message whose image is small
    answer = stub.Superres(pb.SuperresRequest(image=pb.Image(encoded=large), scale=2), timeout=120)
    assert decode_rgb(answer.image.encoded).shape == (64, 96, 3)
    too_large = pb.SuperresRequest(image=pb.Image(encoded=bytes(129 * 2**20)))
    with pytest.raises(grpc.RpcError) as refused:
        stub.Superres(too_large, timeout=120)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in refused.value.details()
    assert stub.Superres(pb.SuperresRequest(image=raw(noise(8, 8))), timeout=30).model == "tiny-x2"


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([], "ended before its first message"),
        ([pb.FrameStreamRequest(frame=pb.Frame(sequence=0, image=raw(noise(8, 8))))], "first message"),
        (
            [
                pb.FrameStreamRequest(config=pb.StreamConfig()),
                pb.FrameStreamRequest(frame=pb.Frame(sequence=3, image=raw(noise(8, 8)))),
                pb.FrameStreamRequest(frame=pb.Frame(sequence=3, image=raw(noise(8, 8)))),
            ],
            "frame 3 came after frame 3",
        ),
        (
            [pb.FrameStreamRequest(config=pb.StreamConfig()), pb.FrameStreamRequest(config=pb.StreamConfig())],
            "only `frame` messages",
        ),
        ([pb.FrameStreamRequest(config=pb.StreamConfig(task="paint"))], "not 'paint'"),
        (
            [
                pb.FrameStreamRequest(config=pb.StreamConfig()),
                pb.FrameStreamRequest(frame=pb.Frame(sequence=1, image=pb.Image(encoded=b"junk"))),
            ],
            "frame 1: the body is not an image",
        ),
    ],
)
def test_stream_protocol_errors_are_invalid_argument(
    stub: filters_pb2_grpc.FiltersStub, messages: list[pb.FrameStreamRequest], says: str
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        list(stub.StreamFrames(iter(messages), timeout=30))
    assert failure.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED)
    assert says in failure.value.details()

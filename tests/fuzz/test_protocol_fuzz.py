"""Hostile requests of the other front doors against the real server: the Open Inference Protocol
over HTTP (JSON and the binary extension), gRPC messages sent as raw bytes (ours and the inference
protocol's), and video containers. Outcomes: a 2xx, a 4xx in the protocol's error shape, or a gRPC
status that names the client's mistake; never a 5xx, INTERNAL or UNKNOWN, and never a trace or a
path. Derandomized; the long random run is `bench/fuzz_campaign.py`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.generators import seed_images
from tests.fuzz.oracle import judge_grpc, judge_http
from tests.fuzz.protocols import grpc_infer_bytes, grpc_superres_bytes, mutated_video, oip_binary, oip_json
from tests.support.live_server import LiveServer
from tests.video.clips import noise_frames, write_clip

SEEDS = seed_images()
PROPERTY = settings(
    derandomize=True, database=None, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def channel(target: LiveServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target.grpc_target) as open_channel:
        yield open_channel


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_clip(tmp_path_factory.mktemp("fuzz-clip") / "clip.mkv", noise_frames(4, 48, 32)).read_bytes()


def _judge(response: httpx.Response) -> str:
    return judge_http(response.status_code, response.content, response.headers.get("content-type", ""))


@PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_inference_protocol_json(client: httpx.Client, rng: random.Random) -> None:
    headers, body = oip_json(rng)
    _judge(client.post("/v2/models/tiny-x2/infer", content=body, headers=headers))


@PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_inference_protocol_binary_extension(client: httpx.Client, rng: random.Random) -> None:
    headers, body = oip_binary(rng)
    _judge(client.post("/v2/models/tiny-x2/infer", content=body, headers=headers))


@PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_grpc_inference_protocol_messages(channel: grpc.Channel, rng: random.Random) -> None:
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    judge_grpc(call, grpc_infer_bytes(rng))


@PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_grpc_superres_messages(channel: grpc.Channel, rng: random.Random) -> None:
    call = channel.unary_unary("/filters.v1.Filters/Superres")
    judge_grpc(call, grpc_superres_bytes(rng, SEEDS))


@settings(derandomize=True, database=None, max_examples=25, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_video_containers(target: LiveServer, clip: bytes, rng: random.Random) -> None:
    body = mutated_video(clip, rng)
    headers = {"content-type": rng.choice(["video/x-matroska", "video/mp4", "video/webm"])}
    with httpx.stream(
        "POST", f"{target.url}/v1/superres?preset=ultrafast", content=body, headers=headers, timeout=120
    ) as answer:
        try:
            content = answer.read()
        except httpx.RemoteProtocolError:
            assert answer.status_code == 200, "only a stream already answered 200 may be cut short"
            return
    judge_http(answer.status_code, content, answer.headers.get("content-type", ""))


def test_a_message_that_does_not_parse_is_invalid_argument(channel: grpc.Channel) -> None:
    """grpcio itself answers UNKNOWN "Unexpected DecodeError"; the interceptor names the mistake."""
    for method in ("/inference.GRPCInferenceService/ModelInfer", "/filters.v1.Filters/Superres"):
        with pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary(method)(b"\xff\xff\xff", timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid message" in refused.value.details()


def test_still_serving_after_the_protocol_fuzzing(target: LiveServer, clip: bytes, tmp_path: Path) -> None:
    assert httpx.post(f"{target.url}/v1/superres", content=SEEDS["png"], timeout=60).status_code == 200
    video = httpx.post(
        f"{target.url}/v1/superres?preset=ultrafast",
        content=clip,
        headers={"content-type": "video/x-matroska"},
        timeout=120,
    )
    assert video.status_code == 200 and len(video.content) > 0
    assert "Traceback" not in target.log()

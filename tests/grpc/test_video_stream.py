"""`ProcessVideo`: a video file streamed in, the filtered file streamed back, through the same
video pipeline as HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, pixels, raw
from tests.support.data import psnr
from tests.support.live_server import LiveServer

av = pytest.importorskip("av")
from tests.video.clips import noise_frames, write_clip  # noqa: E402


@pytest.fixture(scope="module")
def stub(server: LiveServer) -> Iterator[filters_pb2_grpc.FiltersStub]:
    with channel(server) as ch:
        yield filters_pb2_grpc.FiltersStub(ch)


def _requests(config: pb.VideoConfig, data: bytes, piece: int = 4096) -> Iterator[pb.VideoRequest]:
    yield pb.VideoRequest(config=config)
    for start in range(0, len(data), piece):
        yield pb.VideoRequest(chunk=data[start : start + piece])


def _decoded(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_a_video_comes_back_filtered_frame_by_frame(stub: filters_pb2_grpc.FiltersStub, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", noise_frames(6, 64, 48, seed=3)).read_bytes()
    config = pb.VideoConfig(scale=2, size_bytes=len(clip), quality=8)  # CRF 8: close to lossless
    output, summaries = b"", []
    for response in stub.ProcessVideo(_requests(config, clip), timeout=120):
        if response.WhichOneof("kind") == "chunk":
            output += response.chunk
        else:
            summaries.append(response.summary)
    assert len(summaries) == 1 and summaries[0].frames == 6 and summaries[0].model == "tiny-x2"
    assert summaries[0].output_bytes == len(output)
    frames, sources = _decoded(output), _decoded(clip)
    assert len(frames) == 6 and frames[0].shape == (96, 128, 3)
    for got, source in zip(frames, sources, strict=True):
        expected = pixels(stub.Superres(pb.SuperresRequest(image=raw(source), scale=2), timeout=60).image)
        assert psnr(got, expected) > 30  # the same upscale, through a lossy encoder


@pytest.mark.parametrize(
    ("messages", "code", "says"),
    [
        ([], grpc.StatusCode.INVALID_ARGUMENT, "ended before its first message"),
        ([pb.VideoRequest(chunk=b"abc")], grpc.StatusCode.INVALID_ARGUMENT, "must be `config`"),
        ([pb.VideoRequest(config=pb.VideoConfig())], grpc.StatusCode.INVALID_ARGUMENT, "the stream has no video"),
        (
            [pb.VideoRequest(config=pb.VideoConfig(container="avi"))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "container one of",
        ),
        (
            [pb.VideoRequest(config=pb.VideoConfig(size_bytes=2**60))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "MAX_UPLOAD_BYTES",
        ),
        ([pb.VideoRequest(config=pb.VideoConfig(task="detect"))], grpc.StatusCode.UNIMPLEMENTED, "not 'detect'"),
        (
            [pb.VideoRequest(config=pb.VideoConfig()), pb.VideoRequest(chunk=b"not a video at all" * 100)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "",
        ),
    ],
)
def test_bad_video_streams_are_refused_clearly(
    stub: filters_pb2_grpc.FiltersStub, messages: list[pb.VideoRequest], code: grpc.StatusCode, says: str
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        list(stub.ProcessVideo(iter(messages), timeout=60))
    assert failure.value.code() == code, failure.value.details()
    assert says in failure.value.details() and "Traceback" not in failure.value.details()

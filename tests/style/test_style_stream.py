"""Style over gRPC `StreamFrames` (task "style"): each frame comes back painted exactly as the
unary `Stylize` paints it, the style picked by style name or by model name."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, pixels, raw
from tests.support.data import decode_rgb, read_rgb, shared
from tests.support.live_server import LiveServer


def _stream(config: pb.StreamConfig, frames: list[np.ndarray]) -> Iterator[pb.FrameStreamRequest]:
    yield pb.FrameStreamRequest(config=config)
    for sequence, rgb in enumerate(frames):
        yield pb.FrameStreamRequest(frame=pb.Frame(sequence=sequence, image=raw(rgb)))


def _frames() -> list[np.ndarray]:
    """Three frames of a crop sliding over butterfly.png."""
    photo = read_rgb(shared("sr/Set5/butterfly.png"))
    return [np.ascontiguousarray(photo[8 * k : 8 * k + 96, 12 * k : 12 * k + 128]) for k in range(3)]


@pytest.mark.parametrize(("model", "served"), [("candy", "style-candy"), ("style-mosaic", "style-mosaic")])
def test_stream_frames_style_paints_what_unary_stylize_paints(
    style_server: LiveServer, model: str, served: str
) -> None:
    frames = _frames()
    with channel(style_server) as ch:
        stub = filters_pb2_grpc.FiltersStub(ch)
        results = list(stub.StreamFrames(_stream(pb.StreamConfig(task="style", model=model), frames), timeout=300))
        unary = [stub.Stylize(pb.StylizeRequest(image=raw(rgb), model=model), timeout=120) for rgb in frames]
    assert [r.sequence for r in results] == [0, 1, 2]
    for result, answer, rgb in zip(results, unary, frames, strict=True):
        assert result.model == served and not result.detections
        painted = pixels(result.image)
        assert painted.shape == rgb.shape
        assert np.abs(painted.astype(np.int16) - rgb).mean() > 20, "the frame came back unpainted"
        np.testing.assert_array_equal(painted, pixels(answer.image))


def test_stream_frames_style_answers_encoded_frames_when_asked(style_server: LiveServer) -> None:
    frames = _frames()[:2]
    output = pb.OutputOptions(format=pb.IMAGE_FORMAT_PNG)
    config = pb.StreamConfig(task="style", model="candy", output=output)
    with channel(style_server) as ch:
        stub = filters_pb2_grpc.FiltersStub(ch)
        results = list(stub.StreamFrames(_stream(config, frames), timeout=300))
        unary = stub.Stylize(pb.StylizeRequest(image=raw(frames[1]), model="candy"), timeout=120)
    assert [r.image.WhichOneof("data") for r in results] == ["encoded", "encoded"]
    np.testing.assert_array_equal(decode_rgb(results[1].image.encoded), pixels(unary.image))

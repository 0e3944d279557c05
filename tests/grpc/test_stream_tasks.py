"""`StreamFrames` tasks: the config's task is checked before any frame; an unknown one is
INVALID_ARGUMENT naming the tasks, a known one without its model loaded is NOT_FOUND."""

from __future__ import annotations

import grpc
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel, noise, pixels, raw
from tests.support.live_server import LiveServer


def _call(server: LiveServer, config: pb.StreamConfig, frames: int = 1) -> list[pb.FrameResult]:
    messages = [pb.FrameStreamRequest(config=config)]
    messages += [pb.FrameStreamRequest(frame=pb.Frame(sequence=i, image=raw(noise(8, 8, i)))) for i in range(frames)]
    with channel(server) as ch:
        return list(filters_pb2_grpc.FiltersStub(ch).StreamFrames(iter(messages), timeout=60))


def test_an_unknown_task_is_invalid_argument_naming_the_tasks(server: LiveServer) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _call(server, pb.StreamConfig(task="paint"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "superres, style, detect" in refused.value.details() and "not 'paint'" in refused.value.details()
    assert len(_call(server, pb.StreamConfig(task="superres"), frames=2)) == 2, "the server stopped serving"


@pytest.mark.parametrize("task", ["detect", "style"])
def test_a_task_without_its_model_loaded_is_not_found(server: LiveServer, task: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _call(server, pb.StreamConfig(task=task))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "tiny-x2" in refused.value.details()  # the message lists what is loaded


def test_superres_is_still_the_default_task(server: LiveServer) -> None:
    results = _call(server, pb.StreamConfig(), frames=2)
    assert [r.model for r in results] == ["tiny-x2", "tiny-x2"]
    assert [pixels(r.image).shape for r in results] == [(16, 16, 3), (16, 16, 3)]
    assert not any(r.detections for r in results)

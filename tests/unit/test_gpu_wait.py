"""`FILTERS_GPU_WAIT`: the core sets how threads wait for the GPU; spinning is torch's synchronize.
(Sleeping on a blocking CUDA event needs a GPU: the torch runtime's contract tests run it there.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.core import ServingCore
from service.runtimes.torch_cuda import waiting
from service.settings import Settings
from tests.support.tiny_models import write_sr_entry


class RecordingStream:
    def __init__(self) -> None:
        self.synchronized = 0

    def synchronize(self) -> None:
        self.synchronized += 1


@pytest.fixture(autouse=True)
def restore_mode() -> object:
    yield
    waiting.set_mode("block")


def test_the_core_sets_the_wait_mode_and_spin_waits_with_synchronize(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    write_sr_entry(tmp_path / "repository", "tiny", 2)
    ServingCore(Settings(model_repository=tmp_path / "repository", gpu_wait="spin"))
    stream = RecordingStream()
    waiting.wait_for(stream)  # type: ignore[arg-type]
    assert stream.synchronized == 1


def test_an_unknown_wait_mode_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="gpu_wait"):
        Settings(gpu_wait="poll")  # type: ignore[arg-type]

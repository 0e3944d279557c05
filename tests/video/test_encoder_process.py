"""The encoder in a process of its own (FILTERS_VIDEO__ENCODER_PROCESS): the same video as the
in-process encoder, audio copied, failures visible, no process or slot left behind."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
from pathlib import Path

import av
import numpy as np
import pytest

from service.core import ServingCore
from service.errors import InferenceFailed
from service.media import encoder_process
from service.media.video_encode import VideoEncodeOptions
from service.pipelines.video import filter_video
from service.settings import Settings, VideoSettings
from tests.support.tiny_models import write_sr_entry
from tests.video.clips import write_clip

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="the encoder process needs Linux memfd")
COUNT = 40


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grey levels 5 apart (readable after lossy coding), 64x48 (a height of 4k rows: wrapped slots), with audio."""
    frames = [np.full((48, 64, 3), 20 + 5 * i, np.uint8) for i in range(COUNT)]
    return write_clip(tmp_path_factory.mktemp("process") / "gray.mp4", frames, audio_s=COUNT / 25)


def make_core(tmp_path: Path, in_process: bool) -> ServingCore:
    write_sr_entry(tmp_path / "repository", "unused", 2)
    video = VideoSettings(frames_in_flight=4, hardware_codecs=False, encoder_process=in_process)
    return ServingCore(Settings(model_repository=tmp_path / "repository", video=video, codec_threads=2))


async def identity(rgb: np.ndarray) -> np.ndarray:
    return rgb


def run_video(core: ServingCore, source: Path, frame_filter=identity) -> bytes:  # type: ignore[no-untyped-def]
    async def run() -> bytes:
        ticket = core.new_ticket(60)
        try:
            chunks = filter_video(core, frame_filter, source, VideoEncodeOptions(preset="ultrafast"), ticket)
            async with contextlib.aclosing(chunks) as stream:
                return b"".join([chunk async for chunk in stream])
        finally:
            await core.stop()

    return asyncio.run(run())


def levels_and_audio(data: bytes) -> tuple[list[float], float]:
    with av.open(io.BytesIO(data)) as container:
        levels = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
    with av.open(io.BytesIO(data)) as container:
        audio = container.streams.audio[0]
        seconds = sum(float(p.duration * p.time_base) for p in container.demux(audio) if p.duration)
    return levels, seconds


def test_the_encoder_process_makes_the_same_video_with_its_audio(clip: Path, tmp_path: Path) -> None:
    ours = levels_and_audio(run_video(make_core(tmp_path / "a", True), clip))
    threads = levels_and_audio(run_video(make_core(tmp_path / "b", False), clip))
    assert len(ours[0]) == COUNT
    assert all(abs(level - (20 + 5 * i)) < 3 for i, level in enumerate(ours[0])), ours[0]
    assert ours[1] == pytest.approx(threads[1]) and ours[1] > 1.0


def test_device_pictures_are_converted_straight_into_ring_slots(clip: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    async def as_tensor(rgb: np.ndarray) -> object:  # a GPU filter's kind of answer (here on the CPU)
        return torch.from_numpy(rgb.copy())

    levels, _ = levels_and_audio(run_video(make_core(tmp_path, True), clip, as_tensor))
    assert len(levels) == COUNT
    assert all(abs(level - (20 + 5 * i)) < 3 for i, level in enumerate(levels)), levels


def test_odd_quarter_heights_are_copied_into_frames_of_their_own(tmp_path: Path) -> None:
    frames = [np.full((50, 64, 3), 30 + 7 * i, np.uint8) for i in range(12)]  # 50 rows: 4k + 2
    source = write_clip(tmp_path / "odd.mkv", frames)
    levels, _ = levels_and_audio_video_only(run_video(make_core(tmp_path, True), source))
    assert len(levels) == 12 and all(abs(level - (30 + 7 * i)) < 3 for i, level in enumerate(levels))


def levels_and_audio_video_only(data: bytes) -> tuple[list[float], None]:
    with av.open(io.BytesIO(data)) as container:
        return [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)], None


def test_an_encoder_process_that_dies_fails_the_video(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(InferenceFailed):
        run_video(make_core(tmp_path, True), clip, killing_children_at(10, "service.media.encoder_process"))


def test_no_encoder_process_outlives_its_video(clip: Path, tmp_path: Path) -> None:
    run_video(make_core(tmp_path, True), clip)
    kept = {child[0].pid for child in encoder_process.SPARES.children()}
    assert kept  # the video's child, kept warm, and the one started ahead
    assert set(_encoder_children()) == kept


def test_a_warm_child_encodes_the_next_video(clip: Path, tmp_path: Path) -> None:
    run_video(make_core(tmp_path / "first", True), clip)
    warm = {child[0].pid for child in encoder_process.SPARES._warm}
    assert warm
    taken = encoder_process.SPARES._warm[-1][0].pid  # the next video takes this one
    levels, seconds = levels_and_audio(run_video(make_core(tmp_path / "second", True), clip))
    assert len(levels) == COUNT and seconds > 1.0
    assert all(abs(level - (20 + 5 * i)) < 3 for i, level in enumerate(levels)), levels
    assert taken in {child[0].pid for child in encoder_process.SPARES._warm}  # and went back again


def test_the_next_video_of_the_same_size_reuses_the_ring(clip: Path, tmp_path: Path) -> None:
    """A ring whose slots all came back is kept, registered slots and all, for the next video."""
    from service.media.process_writer import IDLE_RINGS

    IDLE_RINGS.keep_none()
    run_video(make_core(tmp_path / "first", True), clip)
    kept = IDLE_RINGS.kept()
    assert len(kept) == 1 and (kept[0].width, kept[0].height) == (64, 48)
    levels, _ = levels_and_audio(run_video(make_core(tmp_path / "second", True), clip))
    assert all(abs(level - (20 + 5 * i)) < 3 for i, level in enumerate(levels)), levels
    assert IDLE_RINGS.kept() == kept  # taken by the second video, and kept again


def test_a_client_that_leaves_early_stops_the_encoder_process(clip: Path, tmp_path: Path) -> None:
    assert first_chunk_then_leave(make_core(tmp_path, True), clip) > 0
    kept = {child[0].pid for child in encoder_process.SPARES.children()}
    assert set(children_running("service.media.encoder_process")) == kept  # the stopped child is gone, not kept


def first_chunk_then_leave(core: ServingCore, clip: Path) -> int:
    """A client that reads the first chunk of the answer and goes: the chunk's length."""

    async def run() -> int:
        ticket = core.new_ticket(60)
        try:
            chunks = filter_video(core, identity, clip, VideoEncodeOptions(preset="ultrafast"), ticket)
            async with contextlib.aclosing(chunks) as stream:
                async for chunk in stream:
                    return len(chunk)
            return 0
        finally:
            await core.stop()

    return asyncio.run(run())


def killing_children_at(frame: int, module: str):  # type: ignore[no-untyped-def]
    """A frame filter that kills this process's `python -m <module>` children at the `frame`-th frame."""
    seen = {"frames": 0}

    async def killing(rgb: np.ndarray) -> np.ndarray:
        seen["frames"] += 1
        if seen["frames"] == frame:
            for pid in children_running(module):
                os.kill(pid, signal.SIGKILL)
        return rgb.copy()

    return killing


def children_running(module: str) -> list[int]:
    """Process ids of this process's children running `python -m <module>`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and module.encode() in cmdline:
                found.append(int(entry.name))
    return found


def _encoder_children() -> list[int]:
    return children_running("service.media.encoder_process")


def test_without_memfd_the_video_encodes_in_process(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked for on a platform without memfd (not Linux): the in-process encoder, same video."""
    monkeypatch.delattr(os, "memfd_create")
    encoder_process.available.cache_clear()
    try:
        before = {child[0].pid for child in encoder_process.SPARES.children()}
        levels, seconds = levels_and_audio(run_video(make_core(tmp_path, True), clip))
        assert len(levels) == COUNT and seconds > 1.0
        assert {child[0].pid for child in encoder_process.SPARES.children()} == before  # no child taken
    finally:
        encoder_process.available.cache_clear()


def test_a_server_with_the_encoder_process_starts_a_child_before_the_first_video(tmp_path: Path) -> None:
    encoder_process.SPARES.close()  # none kept from earlier tests

    async def start_and_stop(core: ServingCore) -> None:
        await core.start()
        await core.stop()

    asyncio.run(start_and_stop(make_core(tmp_path / "without", False)))
    assert encoder_process.SPARES.children() == []  # the option off: no child
    asyncio.run(start_and_stop(make_core(tmp_path / "with", True)))
    started = encoder_process.SPARES.children()
    assert len(started) == 1 and set(_encoder_children()) == {started[0][0].pid}

"""The decoder in a process of its own (FILTERS_VIDEO__DECODER_PROCESS): the same video as decoding
in the server, the upload's errors as the same statuses, slots recycled, no process left behind."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from service.core import ServingCore
from service.errors import InferenceFailed, InvalidInput
from service.media import decoder_process
from service.media.process_reader import ProcessReader
from service.media.video import probe_video
from service.settings import Settings, VideoSettings
from tests.support.tiny_models import write_sr_entry
from tests.video.clips import write_clip
from tests.video.test_encoder_process import (
    COUNT,
    children_running,
    first_chunk_then_leave,
    killing_children_at,
    levels_and_audio,
    run_video,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="the decoder process needs Linux memfd")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grey levels 5 apart (readable after lossy coding), with audio."""
    frames = [np.full((48, 64, 3), 20 + 5 * i, np.uint8) for i in range(COUNT)]
    return write_clip(tmp_path_factory.mktemp("decoder") / "gray.mp4", frames, audio_s=COUNT / 25)


def make_core(tmp_path: Path, decoder: bool, encoder: bool = False, in_flight: int = 4) -> ServingCore:
    write_sr_entry(tmp_path / "repository", "unused", 2)
    video = VideoSettings(
        frames_in_flight=in_flight, hardware_codecs=False, decoder_process=decoder, encoder_process=encoder
    )
    return ServingCore(Settings(model_repository=tmp_path / "repository", video=video, codec_threads=2))


def test_the_decoder_process_gives_the_same_video_with_its_audio(clip: Path, tmp_path: Path) -> None:
    ours = levels_and_audio(run_video(make_core(tmp_path / "a", True), clip))
    here = levels_and_audio(run_video(make_core(tmp_path / "b", False), clip))
    assert len(ours[0]) == COUNT
    assert ours[0] == pytest.approx(here[0], abs=0.5)
    assert ours[1] == pytest.approx(here[1]) and ours[1] > 1.0


def test_with_both_children_the_video_is_the_same(clip: Path, tmp_path: Path) -> None:
    levels, seconds = levels_and_audio(run_video(make_core(tmp_path, True, encoder=True), clip))
    assert len(levels) == COUNT and seconds > 1.0
    assert all(abs(level - (20 + 5 * i)) < 3 for i, level in enumerate(levels)), levels


def test_slots_go_back_to_the_child_as_frames_are_filtered(clip: Path, tmp_path: Path) -> None:
    """One frame in flight: a ring of 10 slots carries all 40 frames only if slots come back."""
    kept: list[int] = []

    async def keeping_a_view(rgb: np.ndarray) -> np.ndarray:
        kept.append(int(rgb[0, 0, 0]))  # a value, not the view: the slot must be given back
        return rgb.copy()

    levels, _ = levels_and_audio(run_video(make_core(tmp_path, True, in_flight=1), clip, keeping_a_view))
    assert len(levels) == COUNT and len(kept) == COUNT


def test_a_truncated_upload_is_the_same_error_as_in_the_server(clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    errors = []
    for decoder in (True, False):
        with pytest.raises(InvalidInput) as raised:
            run_video(make_core(tmp_path / str(decoder), decoder), cut)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]


def test_a_decoder_process_that_dies_fails_the_video(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(InferenceFailed):
        run_video(make_core(tmp_path, True, in_flight=1), clip, killing_children_at(5, "service.media.decoder_process"))


def test_a_warm_child_decodes_the_next_video_and_none_is_left_over(clip: Path, tmp_path: Path) -> None:
    run_video(make_core(tmp_path / "first", True), clip)
    warm = decoder_process.SPARES._warm[-1][0].pid  # the next video takes this one
    levels, _ = levels_and_audio(run_video(make_core(tmp_path / "second", True), clip))
    assert len(levels) == COUNT
    kept = {child[0].pid for child in decoder_process.SPARES.children()}
    assert warm in kept
    assert set(_decoder_children()) == kept


def test_a_client_that_leaves_early_stops_the_decoder_process(clip: Path, tmp_path: Path) -> None:
    assert first_chunk_then_leave(make_core(tmp_path, True, in_flight=1), clip) > 0
    kept = {child[0].pid for child in decoder_process.SPARES.children()}
    assert set(_decoder_children()) == kept  # the stopped child is gone, not kept


def test_frames_of_another_size_than_the_probe_travel_in_the_message(clip: Path) -> None:
    settings = VideoSettings(hardware_codecs=False)
    probe = probe_video(clip, settings)
    reader = ProcessReader(clip, dataclasses.replace(probe, width=probe.width + 2), settings, 4)
    frames = [item for item in reader.items() if isinstance(item, tuple)]
    assert len(frames) == COUNT
    assert all(rgb.shape == (48, 64, 3) for rgb, _ in frames)
    assert [pts for _, pts in frames] == sorted(pts for _, pts in frames)


def _decoder_children() -> list[int]:
    return children_running("service.media.decoder_process")

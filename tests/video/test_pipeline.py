"""`filter_video` in plain asyncio with stand-in frame filters: order, the in-flight bound,
errors and early close stop every stage; the multipart splitter; the channel between loop and threads."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import threading
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core import ServingCore
from service.errors import InferenceFailed
from service.http.uploads import PartRouter
from service.media.video import ColorInfo, frame_to_rgb, probe_video, sniff_container
from service.media.video_encode import Preset, VideoEncodeOptions, VideoWriter, output_color, rgb_to_frame
from service.pipelines.bridge import Channel, ChannelClosed
from service.pipelines.video import FrameFilter, filter_video
from service.settings import Settings, VideoSettings
from tests.support.tiny_models import write_sr_entry
from tests.video.clips import write_clip

WINDOW = 4
COUNT = 24


@pytest.fixture(scope="module")
def gray_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames of one grey level each, 10 apart, so their order can be read back after lossy coding."""
    frames = [np.full((32, 48, 3), 10 * i, np.uint8) for i in range(COUNT)]
    return write_clip(tmp_path_factory.mktemp("pipeline") / "gray.mkv", frames)


def make_core(tmp_path: Path, encoder_segments: int = 1) -> ServingCore:
    """A core that is never started: these tests use its settings and codec pool, not its models,
    and the in-process encoder (the encoder process has tests/video/test_encoder_process.py)."""
    write_sr_entry(tmp_path / "repository", "unused", 2)
    video = VideoSettings(
        frames_in_flight=WINDOW, hardware_codecs=False, encoder_segments=encoder_segments, encoder_process=False
    )
    return ServingCore(Settings(model_repository=tmp_path / "repository", video=video, codec_threads=2))


def video_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("video-")]


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def encode_video(core: ServingCore, frame_filter: FrameFilter, clip: Path, preset: Preset) -> bytes:
    """The whole filtered video of `clip` through `filter_video`, then the core stopped."""

    async def run() -> bytes:
        ticket = core.new_ticket(60)
        try:
            return await collect(filter_video(core, frame_filter, clip, VideoEncodeOptions(preset=preset), ticket))
        finally:
            await core.stop()

    return asyncio.run(run())


def test_frames_come_out_in_order_with_at_most_the_window_in_flight(gray_clip: Path, tmp_path: Path) -> None:
    core = make_core(tmp_path)
    rng = np.random.default_rng(0)
    delays = rng.uniform(0, 0.02, COUNT)  # later frames often finish first
    state = {"now": 0, "most": 0, "calls": 0}

    async def jittery(rgb: np.ndarray) -> np.ndarray:
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(float(delays[state["calls"] % COUNT]))
        state["calls"] += 1
        state["now"] -= 1
        return rgb

    data = encode_video(core, jittery, gray_clip, "ultrafast")
    with av.open(io.BytesIO(data)) as container:
        levels = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
    assert len(levels) == COUNT
    assert all(abs(level - 10 * i) < 4 for i, level in enumerate(levels)), levels
    assert 1 < state["most"] <= WINDOW
    assert not video_threads()


@pytest.mark.parametrize(("fragment_s", "fragments"), [(0.0, 1), (0.2, 4)])
def test_mp4_fragments_end_at_key_frames_or_after_the_longest_fragment(
    gray_clip: Path, tmp_path: Path, fragment_s: float, fragments: int
) -> None:
    """One GOP (under 2 s): one fragment, or one per 0.2 s; the same frames either way."""
    write_sr_entry(tmp_path / "repository", "unused", 2)
    video = VideoSettings(frames_in_flight=WINDOW, hardware_codecs=False, fragment_s=fragment_s)
    core = ServingCore(Settings(model_repository=tmp_path / "repository", video=video, codec_threads=2))

    async def same(rgb: np.ndarray) -> np.ndarray:
        return rgb

    data = encode_video(core, same, gray_clip, "ultrafast")
    boxes = top_level_boxes(data)
    assert boxes[:2] == ["ftyp", "moov"]
    assert boxes.count("moof") >= fragments and (fragment_s > 0 or boxes.count("moof") == 1)
    with av.open(io.BytesIO(data)) as container:
        levels = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
    assert len(levels) == COUNT and levels == sorted(levels)


def top_level_boxes(data: bytes) -> list[str]:
    """The types of an MP4's top-level boxes, in order."""
    found, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        found.append(data[at + 4 : at + 8].decode("latin-1"))
        at += size if size >= 8 else len(data)
    return found


def test_parallel_segment_encoders_make_one_stream_in_order(tmp_path: Path) -> None:
    count = 130  # 5.2 s at 25 fps: three 2-second segments, on three encoders
    levels = [(37 * i) % 200 + 20 for i in range(count)]
    clip = write_clip(tmp_path / "long-gray.mkv", [np.full((32, 48, 3), v, np.uint8) for v in levels])
    core = make_core(tmp_path, encoder_segments=3)

    async def identity(rgb: np.ndarray) -> np.ndarray:
        return rgb

    data = encode_video(core, identity, clip, "veryfast")
    with av.open(io.BytesIO(data)) as container:
        decoded = [(f.pts * f.time_base, float(f.to_ndarray(format="gray").mean())) for f in container.decode(video=0)]
    assert [t for t, _ in decoded] == [Fraction(i, 25) for i in range(count)]
    assert all(abs(got - want) < 4 for (_, got), want in zip(decoded, levels))
    assert not video_threads()


def native_threads() -> int:
    """The process's OS threads that are not Python's (the encoders' and decoders' own)."""
    return len(os.listdir("/proc/self/task")) - threading.active_count()


def native_threads_settled(at_most: int, wait_s: float = 2.0) -> int:
    """`native_threads()` once it is at most `at_most`, or after `wait_s`: a thread that has just
    ended in Python may take a moment to leave the OS (a leaked one stays)."""
    deadline = time.monotonic() + wait_s
    while (count := native_threads()) > at_most and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads in /proc")


@needs_proc
def test_pixel_format_conversions_start_no_threads_of_their_own() -> None:
    """PyAV's default gives each converted frame a swscale thread pool (one thread per core,
    kept while the frame lives); frames are converted in parallel on the codec pool instead."""
    source = av.VideoFrame(96, 64, "yuv420p")
    before = native_threads()
    rgb = frame_to_rgb(source)
    back = rgb_to_frame(rgb, output_color(ColorInfo(2, 1, 2, 2)))
    assert native_threads() == before
    assert rgb.shape == (64, 96, 3) and back.format.name == "yuv420p"


@needs_proc
@pytest.mark.parametrize("segments", [1, 3])
def test_a_finished_video_leaves_no_encoder_behind_without_the_garbage_collector(
    gray_clip: Path, tmp_path: Path, segments: int
) -> None:
    """libx264 keeps its threads (and, at 4K, hundreds of MB of frames) until its context is
    freed; a reference cycle through the mux thread used to keep it until the collector's next
    full pass, and a server's encoders piled up meanwhile."""
    core = make_core(tmp_path, encoder_segments=segments)

    async def identity(rgb: np.ndarray) -> np.ndarray:
        return rgb

    async def run() -> None:
        ticket = core.new_ticket(60)
        try:
            await collect(filter_video(core, identity, gray_clip, VideoEncodeOptions(preset="veryfast"), ticket))
        finally:
            await core.stop()

    gc.collect()
    gc.disable()
    try:
        before = native_threads()
        asyncio.run(run())
        after = native_threads_settled(before)
    finally:
        gc.enable()
    assert after <= before, f"{after - before} native threads outlived the video"
    assert not video_threads()


@needs_proc
@pytest.mark.parametrize("finish", ["close", "abort"])
def test_the_writer_lets_its_encoder_go_when_it_closes_or_aborts(gray_clip: Path, finish: str) -> None:
    """Even while the writer itself is still referenced (by a failure's traceback, say), closing
    or aborting it frees the encoder and its threads at once."""
    probe = probe_video(gray_clip, VideoSettings(hardware_codecs=False))
    gc.collect()
    gc.disable()
    try:
        before = native_threads()
        writer = VideoWriter(io.BytesIO(), gray_clip, probe, VideoEncodeOptions(preset="veryfast"), False, threads=4)
        for _ in range(8):
            writer.write_frame(av.VideoFrame(48, 32, "yuv420p"))
        during = native_threads()
        getattr(writer, finish)()
        after = native_threads_settled(before)
    finally:
        gc.enable()
    assert during >= before + 4, "libx264 was asked for 4 threads"
    assert after <= before, f"{after - before} encoder threads outlived {finish}()"


def test_a_failing_frame_stops_every_stage(gray_clip: Path, tmp_path: Path) -> None:
    core = make_core(tmp_path)
    seen: list[int] = []

    async def fails_at_ten(rgb: np.ndarray) -> np.ndarray:
        seen.append(1)
        if len(seen) == 10:
            raise InferenceFailed("the runtime failed on frame 10")
        return rgb

    async def run() -> None:
        ticket = core.new_ticket(60)
        with pytest.raises(InferenceFailed, match="frame 10"):
            await collect(filter_video(core, fails_at_ten, gray_clip, VideoEncodeOptions(preset="ultrafast"), ticket))
        assert ticket.cancelled  # queued tiles of the other frames are dropped
        await core.stop()

    asyncio.run(run())
    assert len(seen) < COUNT and not video_threads()


def test_closing_early_stops_the_threads(gray_clip: Path, tmp_path: Path) -> None:
    core = make_core(tmp_path)
    options = VideoEncodeOptions(container="mkv", preset="ultrafast")  # Matroska: bytes from the first frame

    async def slow(rgb: np.ndarray) -> np.ndarray:
        await asyncio.sleep(0.01)
        return rgb

    async def run() -> None:
        ticket = core.new_ticket(60)
        chunks = filter_video(core, slow, gray_clip, options, ticket)
        assert await anext(chunks)
        await chunks.aclose()
        assert ticket.cancelled
        await core.stop()

    asyncio.run(run())
    assert not video_threads()


def test_container_sniffing() -> None:
    assert sniff_container(b"\x00\x00\x00\x18ftypmp42") == "mp4"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x01\x00") == "matroska"
    assert sniff_container(b"\x89PNG\r\n\x1a\n") is None
    assert sniff_container(b"") is None


def _multipart(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    out = b""
    for name, data in parts:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="x"\r\n'.encode()
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@given(
    parts=st.lists(st.tuples(st.sampled_from(["frame", "video", "other"]), st.binary(max_size=300)), max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
)
def test_multipart_parts_survive_any_chunking(parts: list[tuple[str, bytes]], cuts: list[int]) -> None:
    body = _multipart(parts, "bOuNdArY42")
    got: list[tuple[str, bytearray]] = []

    def route(name: str, _: dict[str, str]) -> object:
        got.append((name, bytearray()))
        return got[-1][1].extend

    router = PartRouter(b"bOuNdArY42", route)  # type: ignore[arg-type]
    edges = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    for start, end in zip(edges, edges[1:]):
        router.feed(body[start:end])
    assert [(n, bytes(d)) for n, d in got] == parts


def test_channel_blocks_a_thread_until_there_is_room_and_releases_it_on_close() -> None:
    async def run() -> list[object]:
        channel: Channel[int] = Channel(2)
        outcome: list[object] = []

        def producer() -> None:
            try:
                for i in range(5):
                    channel.put_blocking(i)
                    outcome.append(i)
            except ChannelClosed:
                outcome.append("closed")

        thread = threading.Thread(target=producer)
        thread.start()
        assert await channel.get() == 0 and await channel.get() == 1
        await asyncio.sleep(0.3)  # the producer fills the channel again and blocks
        channel.close()
        await asyncio.to_thread(thread.join)
        return outcome

    outcome = asyncio.run(run())
    assert outcome[-1] == "closed" and 2 <= len(outcome) - 1 <= 4


@pytest.mark.parametrize(("min_pixels", "hardware"), [(1920 * 1080, False), (48 * 32, True)])
def test_nvdec_is_asked_for_only_from_the_size_where_it_pays(
    gray_clip: Path, monkeypatch: pytest.MonkeyPatch, min_pixels: int, hardware: bool
) -> None:
    """Small frames decode faster on the CPU (960x540 on the H200: bench/results/video_h200_run8_720.md)."""
    from service.media import video

    asked: list[bool] = []
    real_open = video._open_for_decoding

    def recording_open(path: Path, use_hardware: bool) -> av.container.InputContainer:
        asked.append(use_hardware)
        return real_open(path, False)

    monkeypatch.setattr(video, "_open_for_decoding", recording_open)
    settings = VideoSettings(hardware_codecs=True, hardware_decode_min_pixels=min_pixels)
    frames = list(video.read_video(gray_clip, probe_video(gray_clip, settings), settings))
    assert asked == [hardware] and len(frames) == COUNT


@pytest.mark.parametrize(
    ("size", "setting", "threads"),
    [((960, 540), 0, 2), ((1920, 1080), 0, 5), ((3840, 2160), 0, 16), ((64, 48), 0, 2), ((3840, 2160), 3, 3)],
)
def test_decoder_threads_follow_the_frame_size(
    gray_clip: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], setting: int, threads: int
) -> None:
    """FFmpeg's default (a thread per core, 17 on the H200) for 960x540 cost 0.65 busy cores there."""
    import dataclasses

    from service.media import video

    monkeypatch.setattr(video.os, "cpu_count", lambda: 16)
    settings = VideoSettings(decode_threads=setting)
    probe = dataclasses.replace(probe_video(gray_clip, settings), width=size[0], height=size[1])
    assert video.decode_threads(probe, settings) == threads


@pytest.mark.parametrize("threads", [1, 4])
def test_any_decoder_thread_count_gives_every_frame_in_order(gray_clip: Path, threads: int) -> None:
    from service.media import video

    settings = VideoSettings(decode_threads=threads)
    items = list(video.read_video(gray_clip, probe_video(gray_clip, settings), settings))
    frames = [item for item in items if isinstance(item, video.SourceFrame)]
    assert [f.index for f in frames] == list(range(COUNT))
    assert [f.frame.pts for f in frames] == sorted(f.frame.pts for f in frames)


needs_thread_nice = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice is Linux's")


@needs_thread_nice
def test_a_lowered_thread_passes_its_priority_to_the_threads_it_starts() -> None:
    from service.media.niceness import lower_this_thread

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int | None] = {}

    def child() -> None:
        seen["child"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def lowered() -> None:
        seen["returned"] = lower_this_thread(3)
        seen["self"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        started = threading.Thread(target=child)
        started.start()
        started.join()

    thread = threading.Thread(target=lowered)
    thread.start()
    thread.join()
    want = min(19, base + 3)
    assert seen == {"returned": want, "self": want, "child": want}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller's own is untouched
    assert lower_this_thread(0) is None


@needs_thread_nice
def test_the_encoder_and_its_threads_run_below_the_pipeline(gray_clip: Path, tmp_path: Path) -> None:
    write_sr_entry(tmp_path / "repository", "unused", 2)
    video = VideoSettings(frames_in_flight=WINDOW, hardware_codecs=False, encoder_niceness=4, encoder_process=False)
    core = ServingCore(Settings(model_repository=tmp_path / "repository", video=video, codec_threads=2))
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    calls: list[int] = []
    seen: dict[str, list[int]] = {}

    def niceness_by_thread() -> dict[int, int]:
        found = {}
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                found[int(task.name)] = os.getpriority(os.PRIO_PROCESS, int(task.name))
        return found

    async def watching(rgb: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == COUNT:  # frames 0 .. COUNT - 1 - WINDOW went to the writer: it runs its encoder
            for _ in range(200):
                by_thread = niceness_by_thread()
                encode = [t.native_id for t in threading.enumerate() if t.name == "video-encode"]
                lowered = [tid for tid, nice in by_thread.items() if nice == base + 4]
                if encode and len(lowered) > 1:
                    break
                await asyncio.sleep(0.01)
            seen.update(encode=[by_thread[tid] for tid in encode], lowered=lowered)
            seen["loop"] = [by_thread[threading.get_native_id()]]
        return rgb

    assert encode_video(core, watching, gray_clip, "ultrafast")
    assert seen["encode"] == [base + 4] and seen["loop"] == [base]
    assert len(seen["lowered"]) > 1  # the writer thread and the threads it started (libx264's, the muxer)


def test_new_frames_start_while_the_encoder_works_through_finished_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast filter and a slow encoder: the window stays full of frames while the encoder works.
    It must not drain into the encoder's channel before the next frame starts (on the GPU machine
    the GPU then idled, and the encoder waited for the burst that followed). With the light hand-off
    to the encoder (`handoff.HandOff`) and CPU timings this no longer reproduces that drain: the
    old forwarding passes it too (checked 2026-11-21). It still fails if the window empties while
    the encoder works."""
    from service.pipelines import video as video_pipeline

    count = 60
    clip = write_clip(tmp_path / "steady.mkv", [np.full((32, 48, 3), (7 * i) % 200, np.uint8) for i in range(count)])
    core = make_core(tmp_path)
    real_write = VideoWriter.write_frame
    window_at_encode: list[float] = []

    def slow_write(self: VideoWriter, frame: av.VideoFrame) -> None:
        window_at_encode.append(video_pipeline.FRAMES_IN_FLIGHT._value.get())
        time.sleep(0.004)  # the encoder is the slowest stage, as libx264 is on the GPU machine
        real_write(self, frame)

    monkeypatch.setattr(VideoWriter, "write_frame", slow_write)

    async def fast(rgb: np.ndarray) -> np.ndarray:
        return rgb

    assert encode_video(core, fast, clip, "ultrafast")
    steady = window_at_encode[2 * WINDOW : count - 2 * WINDOW]  # the channel has filled; frames still come
    # three frames in four see a full window (a pump that drained it would leave it lower at most); a
    # loaded test machine may let the decoder fall a frame or two behind now and then
    assert len(window_at_encode) == count and sorted(steady)[len(steady) // 4] >= WINDOW - 1, window_at_encode

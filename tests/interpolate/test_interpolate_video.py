"""Frame-rate multiplication: a video sent to `POST /v1/interpolate` comes back at `factor` times
its frame rate, (n - 1) * factor + 1 frames, through the bundled classical interpolator."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import grpc
import httpx
import numpy as np
import pytest

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.grpc.support import channel
from tests.support.data import decode_rgb, png_bytes, psnr, shared
from tests.support.live_server import LiveServer
from tests.video.client import error_of, post_video
from tests.video.clips import noise_frames, read_report, source_report, write_clip

PATH = "/v1/interpolate"
# An output frame against the frame it copies or equals, through one encode at crf 12: 43-48 dB
# measured on these clips; consecutive frames of asl_again.mkv's first half second are 28-37 dB apart.
CODEC_PSNR_DB = 38.0
# The synthetic clip's frames against a blend of the decoded source frames, at crf 4: 38.7-42.6 dB
# measured for the right blend, 24-25 dB for the blend of any other t.
BLEND_PSNR_DB = 35.0


def first_seconds(source: Path, target: Path, seconds: float) -> Path:
    """The first `seconds` of a clip (in decoding order), video and audio packets copied unchanged."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        kept = [s for s in src.streams if s.type in ("video", "audio")]
        streams = {s.index: out.add_stream_from_template(s) for s in kept}
        for packet in src.demux(*kept):
            stamp = packet.dts if packet.dts is not None else packet.pts  # Matroska gives no dts at first
            if stamp is None or stamp * packet.time_base >= seconds:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return target


def video_times(data: bytes) -> tuple[list[Fraction], Fraction]:
    """Exact presentation times of the video frames, and the stream's average frame rate."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        times = [Fraction(frame.pts) * frame.time_base for frame in container.decode(stream)]
        rate = stream.average_rate
    assert rate is not None
    return times, Fraction(rate)


def rgb_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def expected_times(source: list[Fraction], factor: int) -> list[Fraction]:
    """(n - 1) * factor + 1 times: `factor - 1` evenly between each two source frames, then the frame."""
    times = [source[0]]
    for previous, current in zip(source, source[1:], strict=False):
        times += [previous + k * (current - previous) / factor for k in range(1, factor + 1)]
    return times


def middle_frame(server: LiveServer, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """What the two-frame endpoint makes halfway between two frames."""
    files = {"frame0": png_bytes(first[..., ::-1]), "frame1": png_bytes(second[..., ::-1])}
    response = httpx.post(f"{server.url}{PATH}", params={"times": "0.5"}, files=files, timeout=120)
    assert response.status_code == 200, response.text
    return decode_rgb(base64.b64decode(response.json()["frames"][0]["data"]))


def test_a_real_clip_comes_back_at_twice_its_frame_rate_with_its_audio(
    interpolate_server: LiveServer, tmp_path: Path
) -> None:
    clip = first_seconds(shared("video/car-detection.mp4"), tmp_path / "car-1s.mp4", 1.0)
    result = post_video(interpolate_server, clip, params="preset=ultrafast&crf=12", path=PATH)
    assert result.status == 200, result.data[:300]
    assert result.error is None and result.headers["content-type"] == "video/mp4"
    src_times, src_rate = video_times(clip.read_bytes())
    out_times, out_rate = video_times(result.data)
    n = len(src_times)
    assert len(out_times) == (n - 1) * 2 + 1
    assert out_times == expected_times(src_times, 2), "timestamps are not factor x the source's, exactly"
    assert all(b > a for a, b in zip(out_times, out_times[1:], strict=False))
    assert out_rate == 2 * src_rate
    out, src = read_report(result.data), source_report(clip)
    assert src.audio_span is not None and out.audio_span is not None, "the audio stream is missing"
    assert out.audio_span == pytest.approx(src.audio_span, abs=1e-3), "the audio was not copied unchanged"


def test_source_frames_are_kept_and_the_frames_between_are_the_interpolated_ones(
    interpolate_server: LiveServer, tmp_path: Path
) -> None:
    """asl_again.mkv (hand signs: real motion; B-frames, first pts 33 ms, full range), first 0.5 s."""
    clip = first_seconds(shared("video/asl_again.mkv"), tmp_path / "asl-half.mkv", 0.5)
    result = post_video(
        interpolate_server, clip, params="preset=ultrafast&crf=12", content_type="video/x-matroska", path=PATH
    )
    assert result.status == 200, result.data[:300]
    assert result.error is None
    src_times, out_times = video_times(clip.read_bytes())[0], video_times(result.data)[0]
    assert out_times == expected_times(src_times, 2)
    sources, frames = rgb_frames(clip.read_bytes()), rgb_frames(result.data)
    assert len(frames) == (len(sources) - 1) * 2 + 1
    for index, source in enumerate(sources):
        assert psnr(frames[2 * index], source) > CODEC_PSNR_DB, f"output frame {2 * index} is not source {index}"
    middle = middle_frame(interpolate_server, sources[8], sources[9])
    between = frames[17]
    assert psnr(between, middle) > CODEC_PSNR_DB, "frame 17 is not what the model makes between sources 8 and 9"
    assert psnr(between, middle) > max(psnr(between, sources[8]), psnr(between, sources[9])) + 3


def test_variable_frame_rate_survives_and_factor_three_is_exact(interpolate_server: LiveServer, tmp_path: Path) -> None:
    pts = [0, 30, 90, 100, 160, 230]  # milliseconds apart unevenly: a variable frame rate
    clip = write_clip(tmp_path / "vfr.mkv", noise_frames(6, 64, 48, seed=11), pts=pts, time_base=Fraction(1, 1000))
    result = post_video(interpolate_server, clip, params="factor=3&container=mkv&crf=12", path=PATH)
    assert result.status == 200, result.data[:300]
    assert result.error is None and result.headers["content-type"] == "video/x-matroska"
    out_times, _ = video_times(result.data)
    src_times, _ = video_times(clip.read_bytes())
    assert len(out_times) == (6 - 1) * 3 + 1
    # Matroska stores milliseconds, so each time is the exact one rounded to the millisecond
    wanted = expected_times(src_times, 3)
    assert [round(t, 3) for t in out_times] == [Fraction(round(1000 * t), 1000) for t in wanted]


def test_a_job_with_a_rife_style_model_makes_the_blends_it_computes(
    interpolate_server: LiveServer, tmp_path: Path
) -> None:
    """The tiny RIFE-shaped model (sides padded to 32) outputs frame0 x (1 - t) + frame1 x t."""
    smooth = [cv2.GaussianBlur(f, (0, 0), 4) for f in noise_frames(5, 64, 48, seed=12)]  # codecs keep smooth frames
    clip = write_clip(tmp_path / "job.mp4", smooth)
    params = "factor=4&model=rife-scalar&crf=4"
    created = post_video(interpolate_server, clip, params=params, path=PATH, headers={"Prefer": "respond-async"})
    assert created.status == 202, created.data[:300]
    job_url = f"{interpolate_server.url}/v1/jobs/{created.json()['id']}"
    deadline = time.monotonic() + 120
    while (job := httpx.get(job_url).json())["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job["state"] == "succeeded", job
    assert job["frames_done"] == 5 and job["progress"] == 1.0
    result = httpx.get(f"{interpolate_server.url}{job['result_url']}", timeout=60)
    sources, frames = rgb_frames(clip.read_bytes()), rgb_frames(result.content)
    assert len(frames) == (5 - 1) * 4 + 1
    for index, frame in enumerate(frames):
        pair, k = divmod(index, 4)
        t = k / 4
        first, second = sources[pair].astype(np.float32), sources[min(pair + 1, 4)].astype(np.float32)
        blend = np.clip(np.rint(first * (1 - t) + second * t), 0, 255).astype(np.uint8)
        assert psnr(frame, blend) > BLEND_PSNR_DB, f"frame {index} is not the blend at t = {t} of {pair} and {pair + 1}"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ("factor=1", "query parameter 'factor'"),
        ("factor=9", "query parameter 'factor'"),
        ("factor=two", "query parameter 'factor'"),
        ("count=3", "a video takes 'factor'"),
    ],
)
def test_a_bad_factor_is_422_json_before_any_output(
    interpolate_server: LiveServer, tmp_path: Path, params: str, says: str
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", noise_frames(3, 64, 48, seed=13))
    result = post_video(interpolate_server, clip, params=params, path=PATH)
    assert result.status == 422 and result.headers["content-type"] == "application/json"
    code, message = error_of(result)
    assert code in ("invalid_parameter", "unprocessable") and says in message
    assert httpx.get(f"{interpolate_server.url}/readyz").status_code == 200, "the server stopped serving"


def test_factor_with_two_frames_is_422(interpolate_server: LiveServer) -> None:
    frame = noise_frames(1, 32, 32)[0]
    files = {"frame0": png_bytes(frame), "frame1": png_bytes(frame)}
    response = httpx.post(f"{interpolate_server.url}{PATH}", params={"factor": 2}, files=files, timeout=60)
    assert response.status_code == 422
    assert "'factor' multiplies a video's frame rate" in response.json()["error"]["message"]


def _video_requests(config: pb.VideoConfig, data: bytes, piece: int = 8192) -> Iterator[pb.VideoRequest]:
    yield pb.VideoRequest(config=config)
    for start in range(0, len(data), piece):
        yield pb.VideoRequest(chunk=data[start : start + piece])


def test_grpc_process_video_interpolates_too(interpolate_server: LiveServer, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", noise_frames(4, 64, 48, seed=14)).read_bytes()
    config = pb.VideoConfig(task="interpolate", factor=3, size_bytes=len(clip), quality=12)
    output, summaries = b"", []
    with channel(interpolate_server) as ch:
        stub = filters_pb2_grpc.FiltersStub(ch)
        for response in stub.ProcessVideo(_video_requests(config, clip), timeout=120):
            if response.WhichOneof("kind") == "chunk":
                output += response.chunk
            else:
                summaries.append(response.summary)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ProcessVideo(_video_requests(pb.VideoConfig(task="interpolate", factor=9), clip), timeout=60))
    assert len(summaries) == 1 and summaries[0].model == "interpolate-dis" and summaries[0].frames == 4
    src_times, out_times = video_times(clip)[0], video_times(output)[0]
    assert out_times == expected_times(src_times, 3) and len(out_times) == (4 - 1) * 3 + 1
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "factor must be an integer from 2 to 8, got 9" in refused.value.details()

"""The asynchronous job API: create with `Prefer: respond-async`, poll, stream or fetch, cancel, expire."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from service.runtimes.fault_injection import FAIL_BATCH_RGB
from tests.support.data import shared
from tests.support.live_server import LiveServer
from tests.video.client import post_video
from tests.video.clips import noise_frames, read_report, source_report, write_clip

ASYNC = {"Prefer": "respond-async"}
MKV = "video/x-matroska"


def create_job(server: LiveServer, clip: Path, content_type: str = MKV, params: str = "preset=ultrafast") -> Any:
    result = post_video(server, clip, content_type=content_type, headers=ASYNC, params=params)
    assert result.status == 202, result.data[:300]
    job = result.json()
    assert result.headers["location"] == f"/v1/jobs/{job['id']}"
    assert result.headers["preference-applied"] == "respond-async"
    return job


def wait_until_finished(server: LiveServer, job_id: str, timeout_s: float = 240) -> list[dict[str, Any]]:
    """Every poll answer until the job is finished (the last one is final)."""
    polls: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.url}/v1/jobs/{job_id}")
        assert answer.status_code == 200
        polls.append(answer.json())
        if polls[-1]["state"] in ("succeeded", "failed", "cancelled"):
            return polls
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {polls[-1]}")


def test_job_reports_progress_and_its_result_is_the_filtered_video(video_server: LiveServer) -> None:
    clip = shared("video/asl_again.mkv")
    job = create_job(video_server, clip)
    assert job["state"] in ("queued", "running") and job["model"] == "vid-x2"
    polls = wait_until_finished(video_server, job["id"])
    final = polls[-1]
    assert final["state"] == "succeeded" and final["error"] is None and final["progress"] == 1.0
    done = [p["frames_done"] for p in polls]
    assert done == sorted(done), "progress went backwards"
    assert all(p["progress"] is None or 0 <= p["progress"] <= 1 for p in polls)
    src = source_report(clip)
    assert final["frames_done"] == len(src.frame_times)
    listed = httpx.get(f"{video_server.url}/v1/jobs").json()["jobs"]
    assert job["id"] in [j["id"] for j in listed]

    result = httpx.get(f"{video_server.url}{final['result_url']}")
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert int(result.headers["content-length"]) == final["bytes_written"]
    out = read_report(result.content)
    assert len(out.frame_times) == len(src.frame_times) and (out.width, out.height) == (2 * src.width, 2 * src.height)
    ranged = httpx.get(f"{video_server.url}{final['result_url']}", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == result.content[:100]


def test_result_streams_while_the_job_runs(video_server: LiveServer, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "longer.mkv", noise_frames(150, 320, 240))  # seconds of work, not milliseconds
    job = create_job(video_server, clip)
    with httpx.stream("GET", f"{video_server.url}/v1/jobs/{job['id']}/result", timeout=120) as streamed:
        assert streamed.status_code == 200
        running = streamed.headers.get("x-job-state")
        data = b"".join(streamed.iter_bytes())
    final = wait_until_finished(video_server, job["id"])[-1]
    assert final["state"] == "succeeded"
    fetched = httpx.get(f"{video_server.url}{final['result_url']}").content
    assert running in ("queued", "running"), "the job ended before its result was asked for"
    assert data == fetched, "the streamed result differs from the finished file"
    assert len(read_report(data).frame_times) == 150


def test_delete_cancels_a_running_job_and_forgets_it(video_server: LiveServer, video_spool: Path) -> None:
    job = create_job(video_server, shared("video/big_buck_bunny.mp4"), content_type="video/mp4")
    deleted = httpx.delete(f"{video_server.url}/v1/jobs/{job['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["state"] == "cancelled"
    assert httpx.get(f"{video_server.url}/v1/jobs/{job['id']}").status_code == 404
    assert not list((video_spool / "jobs").glob(f"{job['id']}*")), "the result file was left behind"


def test_a_failed_job_says_why_and_has_no_result(video_server: LiveServer, tmp_path: Path) -> None:
    frames = [np.full((48, 64, 3), FAIL_BATCH_RGB, np.uint8)] * 3
    clip = write_clip(tmp_path / "bad.mkv", frames, codec="ffv1", pix_fmt="bgr0")
    job = create_job(video_server, clip)
    final = wait_until_finished(video_server, job["id"])[-1]
    assert final["state"] == "failed" and final["error"]["code"] == "inference_failed"
    result = httpx.get(f"{video_server.url}{final['result_url']}")
    assert result.status_code == 409
    assert "failed" in result.json()["error"]["message"]


def test_unknown_job_is_404(video_server: LiveServer) -> None:
    for answer in (
        httpx.get(f"{video_server.url}/v1/jobs/nope"),
        httpx.get(f"{video_server.url}/v1/jobs/nope/result"),
        httpx.delete(f"{video_server.url}/v1/jobs/nope"),
    ):
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_jobs_are_bounded_and_expire(strict_server: LiveServer, tmp_path: Path) -> None:
    """The strict server holds 2 jobs, each for 5 s after it ends."""
    clip = write_clip(tmp_path / "tiny.mkv", noise_frames(4, 32, 32))
    first, second = create_job(strict_server, clip), create_job(strict_server, clip)
    refused = post_video(strict_server, clip, content_type=MKV, headers=ASYNC)
    assert refused.status == 429 and "FILTERS_JOBS__MAX_JOBS" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    for job in (first, second):
        assert wait_until_finished(strict_server, job["id"])[-1]["state"] == "succeeded"
    deadline = time.monotonic() + 30
    while httpx.get(f"{strict_server.url}/v1/jobs/{first['id']}").status_code != 404:
        assert time.monotonic() < deadline, "the finished job never expired"
        time.sleep(0.2)
    create_job(strict_server, clip)  # room again

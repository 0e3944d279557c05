"""`/v1/jobs`: poll, stream or fetch, and cancel asynchronous video jobs.

A job is created by sending a video to a filter endpoint (`POST /v1/superres`, ...) with the
header `Prefer: respond-async`; the answer is `202 Accepted` with the job and its `Location`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from service.errors import Conflict
from service.http.errors import ERROR_SCHEMA
from service.jobs.records import Job, JobState
from service.jobs.store import JobStore

router = APIRouter(tags=["jobs"])
_CHUNK = 256 * 1024
_POLL_S = 1.0


class JobError(BaseModel):
    """Why a job failed or was cancelled."""

    code: str
    message: str


class JobInfo(BaseModel):
    """A job's state and progress. Times are Unix seconds."""

    id: str
    state: JobState
    model: str
    media_type: str = Field(description="Media type of the result.")
    created_at: float
    started_at: float | None
    finished_at: float | None
    frames_done: int = Field(description="Frames filtered and handed to the encoder so far.")
    frames_total: int | None = Field(description="Frames the video declares (or an estimate from its duration).")
    progress: float | None = Field(description="frames_done / frames_total, 0 to 1.")
    frames_per_s: float | None
    eta_s: float | None = Field(description="Seconds left at the current rate.")
    bytes_written: int = Field(description="Bytes of the result written so far.")
    result_url: str = Field(description="GET it to fetch the result, or to stream it while the job runs.")
    error: JobError | None


class JobList(BaseModel):
    """Every job the server holds (finished ones until they expire)."""

    jobs: list[JobInfo]


def job_info(job: Job) -> JobInfo:
    """The API view of `job`."""
    error = JobError(code=job.error.code, message=job.error.message) if job.error else None
    return JobInfo(
        id=job.id,
        state=job.state,
        model=job.model,
        media_type=job.media_type,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        frames_done=job.frames_done,
        frames_total=job.frames_total,
        progress=job.fraction_done,
        frames_per_s=job.frames_per_s,
        eta_s=job.eta_s,
        bytes_written=job.bytes_written,
        result_url=f"/v1/jobs/{job.id}/result",
        error=error,
    )


def get_jobs(request: Request) -> JobStore:
    jobs: JobStore = request.app.state.jobs
    return jobs


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {404: "No such job (or it expired).", 409: "The job failed or was cancelled; it has no result."}
    return {s: {"description": text[s], "content": {"application/json": {"schema": ERROR_SCHEMA}}} for s in statuses}


@router.get("/v1/jobs", response_model=JobList)
async def list_jobs(request: Request) -> JobList:
    """Every job held, oldest first."""
    return JobList(jobs=[job_info(j) for j in get_jobs(request).list()])


@router.get("/v1/jobs/{job_id}", response_model=JobInfo, responses=_errors(404))
async def get_job(request: Request, job_id: str) -> JobInfo:
    """A job's state and progress: poll it."""
    return job_info(get_jobs(request).get(job_id))


@router.get(
    "/v1/jobs/{job_id}/result",
    response_class=Response,
    responses={
        200: {
            "description": "The result: the whole file once the job succeeded (ranges allowed), else streamed "
            "while it is written; a failure after the first byte aborts the connection.",
            "content": {"video/mp4": {}, "video/x-matroska": {}, "video/webm": {}},
        },
        **_errors(404, 409),
    },
)
async def get_job_result(request: Request, job_id: str) -> Response:
    """The job's output video: fetch it when done, or stream it as it is produced."""
    job = get_jobs(request).get(job_id)
    if job.state == "succeeded":
        return FileResponse(job.result_path, media_type=job.media_type)
    if job.finished:
        raise _no_result(job)
    return StreamingResponse(_tail(job), media_type=job.media_type, headers={"X-Job-State": job.state})


@router.delete("/v1/jobs/{job_id}", response_model=JobInfo, responses=_errors(404))
async def delete_job(request: Request, job_id: str) -> JobInfo:
    """Cancel the job if it still runs, delete its result and forget it."""
    return job_info(await get_jobs(request).delete(job_id))


def _no_result(job: Job) -> Conflict:
    reason = f": {job.error.message}" if job.error else ""
    return Conflict(f"job {job.id} {job.state}{reason}; it has no result")


async def _tail(job: Job) -> AsyncIterator[bytes]:
    """The result file as it grows, until the job ends; raises (aborting the stream) if it fails."""
    while not job.result_path.exists() and not job.finished:
        await job.wait_for_change(_POLL_S)
    if job.state != "succeeded" and job.finished:
        raise _no_result(job)
    with job.result_path.open("rb") as file:
        while True:
            finished = job.finished  # read before the file: bytes written before the end are all seen
            while data := file.read(_CHUNK):
                yield data
            if finished:
                break
            await job.wait_for_change(_POLL_S)
    if job.state != "succeeded":
        raise _no_result(job)

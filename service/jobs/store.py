"""The job store: a bounded number of asynchronous video jobs, their results on disk for a while.

A job takes over a spooled upload, waits for one of `max_running` places, runs the same
`filter_video` as a streamed request (with its own admission, metrics and a deadline of
`timeout_s`), and writes the output to a file that clients can poll, stream while it grows, or
fetch when done. Finished jobs and their files are deleted `ttl_s` after they finish (swept on
every store call and once a minute), and all of them when the server stops: jobs live in memory,
so they do not survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

from service.core import ServingCore
from service.errors import Cancelled, DeadlineExceeded, NotFound, Overloaded, ServiceError
from service.jobs.records import Job, JobState
from service.media.spool import SpooledFile, spool_folder
from service.media.video import VideoProbe
from service.media.video_encode import VideoEncodeOptions
from service.pipelines.video import VideoFilter, filter_video

log = logging.getLogger(__name__)

_SWEEP_INTERVAL_S = 60.0
_RETRY_S = 1.0


class JobStore:
    """Creates, runs, lists, cancels and expires jobs (one per server)."""

    def __init__(self, core: ServingCore) -> None:
        self._core = core
        self._settings = core.settings.jobs
        self._jobs: dict[str, Job] = {}
        self._running = asyncio.Semaphore(self._settings.max_running)
        self._sweeper: asyncio.Task[None] | None = None

    def create(self, video: VideoFilter, upload: SpooledFile, probe: VideoProbe, options: VideoEncodeOptions) -> Job:
        """Queue a job on `upload` (which it now owns); `Overloaded` when `max_jobs` are held."""
        self._sweep()
        if len(self._jobs) >= self._settings.max_jobs:
            raise Overloaded(
                f"{len(self._jobs)} jobs are held, the limit (FILTERS_JOBS__MAX_JOBS); delete finished jobs "
                "(DELETE /v1/jobs/{id}) or retry later",
                retry_after_s=self._retry_after(),
            )
        folder = spool_folder(self._core.settings.video.spool_dir) / "jobs"
        folder.mkdir(exist_ok=True)
        job_id = uuid.uuid4().hex
        suffix = {"mp4": ".mp4", "mkv": ".mkv", "webm": ".webm"}[options.container]
        job = Job(job_id, video.served.name, options.media_type, folder / f"{job_id}{suffix}", probe.frames)
        self._jobs[job_id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, video, upload, probe, options))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        return job

    def get(self, job_id: str) -> Job:
        self._sweep()
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(
                f"no job '{job_id}': it never existed, or it expired {self._settings.ttl_s:g} s after it ended"
            )
        return job

    def list(self) -> list[Job]:
        self._sweep()
        return sorted(self._jobs.values(), key=lambda j: j.created_at)

    async def delete(self, job_id: str) -> Job:
        """Cancel the job if it is still going, delete its result and forget it."""
        job = self.get(job_id)
        await self._stop(job, "the job was cancelled by a DELETE request")
        del self._jobs[job_id]
        return job

    async def close(self) -> None:
        """Server shutdown: cancel running jobs and delete every result."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for job in list(self._jobs.values()):
            await self._stop(job, "the server shut down")
        self._jobs.clear()

    async def _stop(self, job: Job, reason: str) -> None:
        if job.task is not None and not job.task.done():
            if job.ticket is not None:
                job.ticket.cancelled = True
            job.task.cancel()
            await asyncio.wait([job.task])
            self._finish(job, "cancelled", Cancelled(reason))
        job.result_path.unlink(missing_ok=True)

    async def _run(
        self, job: Job, video: VideoFilter, upload: SpooledFile, probe: VideoProbe, options: VideoEncodeOptions
    ) -> None:
        try:
            async with self._running:
                job.state, job.started_at = "running", time.time()
                job.notify()
                await self._produce(job, video, upload, probe, options)
            self._finish(job, "succeeded", None)
        except asyncio.CancelledError:
            raise
        except ServiceError as exc:
            self._finish(job, "cancelled" if isinstance(exc, Cancelled) else "failed", exc)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self._finish(job, "failed", ServiceError(f"the job failed: {exc}"))
        finally:
            upload.discard()

    async def _produce(
        self, job: Job, video: VideoFilter, upload: SpooledFile, probe: VideoProbe, options: VideoEncodeOptions
    ) -> None:
        """Run the video through the filter into the job's result file, retrying admission."""
        deadline = time.monotonic() + self._settings.timeout_s
        while True:
            try:
                async with self._core.request_scope(video.served, self._settings.timeout_s) as ticket:
                    job.ticket = ticket
                    chunks = filter_video(
                        self._core, video.frames(ticket), upload.path, options, ticket, probe=probe,
                        progress=self._progress(job),
                    )  # fmt: skip
                    with job.result_path.open("wb") as out:
                        async with contextlib.aclosing(chunks):
                            async for chunk in chunks:
                                out.write(chunk)
                                job.bytes_written += len(chunk)
                                job.notify()
                return
            except Overloaded as exc:  # the model is busy with other requests: a job can wait
                if time.monotonic() + exc.retry_after_s > deadline:
                    raise DeadlineExceeded("the job's deadline passed while the model was busy") from None
                await asyncio.sleep(max(_RETRY_S, exc.retry_after_s))

    @staticmethod
    def _progress(job: Job) -> Callable[[int], None]:
        def update(frames: int) -> None:
            job.frames_done = frames

        return update

    @staticmethod
    def _finish(job: Job, state: JobState, error: ServiceError | None) -> None:
        if job.finished:
            return
        job.state = state
        job.error = error
        job.finished_at = time.time()
        if state != "succeeded":
            job.result_path.unlink(missing_ok=True)
        job.notify()

    def _sweep(self) -> None:
        now = time.time()
        for job in list(self._jobs.values()):
            if job.finished_at is not None and now - job.finished_at > self._settings.ttl_s:
                job.result_path.unlink(missing_ok=True)
                del self._jobs[job.id]

    def _retry_after(self) -> float:
        ends = [j.finished_at + self._settings.ttl_s - time.time() for j in self._jobs.values() if j.finished_at]
        return max(1.0, min(ends)) if ends else 30.0

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(min(_SWEEP_INTERVAL_S, self._settings.ttl_s / 2))
            self._sweep()

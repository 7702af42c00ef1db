"""A worker's side of the load queue: claim jobs, load them, say how it went.

Each job runs as the load it stands for (:meth:`Library.load`, then the attach its asker
wanted) with a heartbeat beside it that also carries its progress. A job whose asker cancelled
it is stopped and rolled back; one whose previous worker stopped beating is taken over, that
worker's half-done files rolled back first. Stopping, the runner lets its loads finish within
the grace period, then cancels the rest (rolled back) and puts their jobs back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from pathlib import Path

from agent.documents.jobs import BEAT_SECONDS, STALE_AFTER_SECONDS, Job, JobFile, LoadJobs
from agent.documents.library import Library
from agent.documents.loads import FileInput, LoadReport, Progress, ProgressCallback
from agent.documents.recovery import process_owner
from agent.errors import INTERNAL_ERROR, ArchivistError
from agent.telemetry import JobTelemetry, NoTelemetry

log = logging.getLogger(__name__)


class JobRunner:
    """Runs queued loads, ``concurrency`` at a time, until :meth:`close`."""

    def __init__(
        self,
        library: Library,
        jobs: LoadJobs,
        *,
        concurrency: int = 1,
        idle_seconds: float = 1.0,
        beat_seconds: float = BEAT_SECONDS,
        stale_after: float = STALE_AFTER_SECONDS,
        owner: str | None = None,
        telemetry: JobTelemetry | None = None,
    ) -> None:
        self._library = library
        self._jobs = jobs
        self._slots = asyncio.Semaphore(concurrency)
        self._idle = idle_seconds
        self._beat = beat_seconds
        self._stale_after = stale_after
        self.owner = owner or process_owner()
        self._telemetry = telemetry or NoTelemetry()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._stopped: set[asyncio.Task[None]] = set()
        self.finished = 0
        """Jobs run to their end (loaded or not), for logs and tests."""

    @property
    def running(self) -> int:
        """Jobs under way in this process."""
        return len(self._running)

    async def run(self) -> None:
        """Claim and run jobs until :meth:`close` is called."""
        log.info("running load jobs as %s", self.owner)
        while not self._stopping.is_set():
            await self._slots.acquire()
            try:
                job = await self._jobs.claim(self.owner, stale_after=self._stale_after)
            except ArchivistError as exc:  # the database is away: try again in a while
                log.warning("cannot claim load jobs: %s", exc)
                job = None
            if job is None:
                self._slots.release()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._idle)
                continue
            task = asyncio.create_task(self._run(job))
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def close(self, grace: float = 0.0) -> None:
        """Claim nothing more; give running loads ``grace`` seconds, then stop them (rolled
        back, their jobs queued again for another worker)."""
        self._stopping.set()
        if self._running and grace > 0:
            await asyncio.wait(set(self._running), timeout=grace)
        for task in list(self._running):
            self._stopped.add(task)
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _run(self, job: Job) -> None:
        if job.previous_owner is not None:
            log.warning(
                "load job %d: taking over from %s, which stopped beating",
                job.id,
                job.previous_owner,
            )
            await self._library.take_over(job.previous_owner)
        log.info("load job %d: %d files into %s/%s", job.id, len(job.files), job.scope, job.name)
        latest: list[Progress] = []
        with tempfile.TemporaryDirectory(prefix="archivist-job-") as folder:
            inputs = [
                await asyncio.to_thread(_written, Path(folder), n, f)
                for n, f in enumerate(job.files)
            ]
            load = asyncio.create_task(self._load(job, inputs, latest.append))
            beating = asyncio.create_task(self._beat_while(job, load, latest))
            try:
                report = await load
            except asyncio.CancelledError:
                beating.cancel()
                if asyncio.current_task() in self._stopped:
                    await asyncio.shield(self._jobs.release(job, self.owner))
                    self._telemetry.job_finished("requeued")
                    log.info("load job %d: stopped by the shutdown, queued again", job.id)
                    raise
                # Its asker cancelled it: the load has rolled back, nobody waits for a report.
                await self._jobs.fail(job, self.owner, "cancelled")
                self._telemetry.job_finished("cancelled")
                log.info("load job %d: cancelled by its asker, rolled back", job.id)
                return
            except ArchivistError as exc:
                beating.cancel()
                await self._jobs.fail(job, self.owner, str(exc))
                self._telemetry.job_finished("failed")
                log.warning("load job %d failed: %s", job.id, exc)
                return
            except Exception:  # a bug: said once, not retried by every worker in turn
                beating.cancel()
                log.exception("load job %d failed", job.id)
                await self._jobs.fail(job, self.owner, INTERNAL_ERROR)
                self._telemetry.job_finished("failed")
                return
            finally:
                with contextlib.suppress(asyncio.CancelledError):
                    beating.cancel()
                    await beating
        await self._jobs.finish(job, self.owner, report, latest[-1] if latest else None)
        self.finished += 1
        self._telemetry.job_finished("loaded" if report.loaded else "not loaded")
        log.info("load job %d: %s", job.id, report.summary())

    async def _load(
        self, job: Job, inputs: list[FileInput], progress: ProgressCallback
    ) -> LoadReport:
        report = await self._library.load(
            job.scope, job.name, inputs, created_by=job.requested_by, progress=progress
        )
        if report.loaded and job.conversation is not None:
            await self._library.links.attach(
                job.conversation, job.scope, job.name, by=job.requested_by
            )
        return report

    async def _beat_while(
        self, job: Job, load: asyncio.Task[LoadReport], latest: list[Progress]
    ) -> None:
        """Beat (with the latest progress) until the load ends; stop it if the job is no
        longer ours."""
        while not load.done():
            try:
                ours = await self._jobs.beat(job, self.owner, latest[-1] if latest else None)
            except ArchivistError as exc:  # the next beat may get through
                log.warning("load job %d: heartbeat failed: %s", job.id, exc)
                ours = True
            if not ours:
                load.cancel()
                return
            await asyncio.sleep(self._beat)


def _written(folder: Path, position: int, file: JobFile) -> FileInput:
    """A job's file on disk for the loader, in a folder of its own (names may repeat)."""
    path = folder / str(position) / Path(file.name).name
    path.parent.mkdir()
    path.write_bytes(file.content)
    return FileInput(path, name=file.name, origin=file.origin, folder=file.folder)

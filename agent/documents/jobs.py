"""Loads as jobs in a PostgreSQL queue, so that the processes that answer need not embed.

A process that is asked for a load (an upload in a channel, ``archivist load``) stores the
request and the files' bytes as a job and waits for its outcome, relaying progress; any process
running :class:`~agent.documents.job_runner.JobRunner` (``archivist worker``) claims it, loads,
and writes progress and the outcome back to the job's row.

A table with ``FOR UPDATE SKIP LOCKED`` in the state database rather than a queue library: the
jobs commit with the state they change, on the one driver the bot already has, and a worker's
death is read from the same heartbeats as a load's. Jobs need PostgreSQL: with SQLite a load
runs in the process that was asked, as ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.db import Database, Row
from agent.documents.loads import (
    FileInput,
    FileResult,
    LoadReport,
    Progress,
    ProgressCallback,
    StageTimes,
)
from agent.documents.registry import SourceRegistry
from agent.errors import ArchivistError

log = logging.getLogger(__name__)

# How often a waiting process reads its job's row, and a worker writes its heartbeat.
POLL_SECONDS = 0.25
BEAT_SECONDS = 5.0
# A running job whose worker has not beaten for this long is presumed dead and taken over.
STALE_AFTER_SECONDS = 60.0
# A job whose workers died this many times (a file that kills them, say) is not tried again.
MAX_ATTEMPTS = 3
GAVE_UP = (
    "The load stopped {attempts} workers before it could finish (the file may be too much for"
    " them): it was not tried again."
)


class JobFailed(ArchivistError):
    """The worker could not run the load; the message says why."""


@dataclass(frozen=True)
class JobFile:
    """A file of a job, as its bytes."""

    name: str
    origin: str | None
    folder: tuple[str, ...]
    content: bytes


@dataclass(frozen=True)
class Job:
    """A load claimed by a worker."""

    id: int
    conversation: str | None
    scope: str
    name: str
    requested_by: str
    attempts: int
    previous_owner: str | None
    """The worker that had it before, when this claim takes over from a dead one."""
    files: tuple[JobFile, ...]


def _progress_json(progress: Progress) -> str:
    return json.dumps(asdict(progress))


def outcome_json(report: LoadReport) -> str:
    """A report as the job row keeps it (the source by id, read again by the waiter)."""
    return json.dumps(
        {
            "source_id": report.source.id if report.source else None,
            "source_name": report.source_name,
            "files": [asdict(f) for f in report.files],
            "times": asdict(report.times),
        }
    )


class LoadJobs:
    """The queue's rows: what askers write and read, and what workers claim and update."""

    def __init__(self, db: Database, registry: SourceRegistry) -> None:
        if db.dialect != "postgresql":
            raise ValueError("load jobs need the state in PostgreSQL")
        self._db = db
        self._registry = registry

    # --- the asking side --------------------------------------------------------------------

    async def enqueue(
        self, conversation: str | None, scope: str, name: str, files: Sequence[FileInput], by: str
    ) -> int:
        """Store a load request and its files' bytes; return the job's id."""
        contents = [await asyncio.to_thread(Path.read_bytes, f.path) for f in files]
        async with self._db.transaction() as conn:
            (row,) = await conn.fetchall(
                "INSERT INTO load_jobs (conversation, scope, name, requested_by, state)"
                " VALUES (?, ?, ?, ?, 'queued') RETURNING id",
                (conversation, scope, name, by),
            )
            job_id = int(row["id"])
            await conn.executemany(
                "INSERT INTO load_job_files (job_id, position, name, origin, folder, content)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (job_id, n, f.name or f.path.name, f.origin, json.dumps(f.folder), content)
                    for n, (f, content) in enumerate(zip(files, contents, strict=True))
                ],
            )
        log.info("load job %d queued: %d files into %s/%s", job_id, len(files), scope, name)
        return job_id

    async def wait(self, job_id: int, progress: ProgressCallback | None = None) -> LoadReport:
        """The job's report once a worker has run it, relaying its progress meanwhile.

        Cancelled, the job is cancelled too: a worker running it stops and rolls it back.
        """
        shown = None
        try:
            while True:
                row = await self._db.fetchone(
                    "SELECT state, progress, outcome FROM load_jobs WHERE id = ?", (job_id,)
                )
                if row is None:
                    raise JobFailed("The load's job disappeared: load the file again.")
                if progress is not None and row["progress"] and row["progress"] != shown:
                    shown = row["progress"]
                    progress(Progress(**json.loads(shown)))
                if row["state"] in ("done", "failed"):
                    break
                await asyncio.sleep(POLL_SECONDS)
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(job_id))
            raise
        await self._db.write("DELETE FROM load_jobs WHERE id = ?", (job_id,))
        if row["state"] == "failed":
            raise JobFailed(str(row["outcome"]))
        return await self._report(json.loads(row["outcome"]))

    async def _cancel(self, job_id: int) -> None:
        await self._db.write(
            "UPDATE load_jobs SET state = 'cancelled' WHERE id = ? AND state IN"
            " ('queued', 'running')",
            (job_id,),
        )

    async def _report(self, outcome: dict[str, Any]) -> LoadReport:
        source_id = outcome["source_id"]
        source = None if source_id is None else await self._registry.get(int(source_id))
        return LoadReport(
            source,
            str(outcome["source_name"]),
            [FileResult(**f) for f in outcome["files"]],
            StageTimes(**outcome["times"]),
        )

    # --- the working side -------------------------------------------------------------------

    async def claim(self, owner: str, *, stale_after: float = STALE_AFTER_SECONDS) -> Job | None:
        """Take the oldest queued job, or one whose worker stopped beating; None if none."""
        now = time.time()
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE load_jobs SET state = 'failed', outcome = ? WHERE state = 'running'"
                " AND heartbeat < ? AND attempts >= ?",
                (GAVE_UP.format(attempts=MAX_ATTEMPTS), now - stale_after, MAX_ATTEMPTS),
            )
            rows = await conn.fetchall(
                "SELECT id, state, owner FROM load_jobs"
                " WHERE state = 'queued' OR (state = 'running' AND heartbeat < ?)"
                " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                (now - stale_after,),
            )
            if not rows:
                return None
            taken = rows[0]
            previous = taken["owner"] if taken["state"] == "running" else None
            (job,) = await conn.fetchall(
                "UPDATE load_jobs SET state = 'running', owner = ?, heartbeat = ?,"
                " attempts = attempts + 1 WHERE id = ? RETURNING *",
                (owner, now, taken["id"]),
            )
            files = await conn.fetchall(
                "SELECT name, origin, folder, content FROM load_job_files WHERE job_id = ?"
                " ORDER BY position",
                (taken["id"],),
            )
        return _job(job, previous, files)

    async def beat(self, job: Job, owner: str, progress: Progress | None = None) -> bool:
        """Record that ``owner`` is still at work (and where); False once the job is no longer
        its own (cancelled by the asker, or taken over after a stall)."""
        rows = await self._db.write(
            "UPDATE load_jobs SET heartbeat = ?, progress = COALESCE(?, progress)"
            " WHERE id = ? AND owner = ? AND state = 'running' RETURNING id",
            (time.time(), None if progress is None else _progress_json(progress), job.id, owner),
        )
        return bool(rows)

    async def finish(
        self, job: Job, owner: str, report: LoadReport, progress: Progress | None = None
    ) -> None:
        """Hand the report (and where the load ended) to the asker; the files' bytes are no
        longer needed."""
        await self._end(job, owner, "done", outcome_json(report), progress)

    async def fail(self, job: Job, owner: str, message: str) -> None:
        """Hand the asker the sentence saying why the load could not run."""
        await self._end(job, owner, "failed", message)

    async def release(self, job: Job, owner: str) -> None:
        """Put a job back in the queue (its worker is stopping before it could run it)."""
        await self._db.write(
            "UPDATE load_jobs SET state = 'queued', owner = NULL WHERE id = ? AND owner = ?"
            " AND state = 'running'",
            (job.id, owner),
        )

    async def _end(
        self, job: Job, owner: str, state: str, outcome: str, progress: Progress | None = None
    ) -> None:
        async with self._db.transaction() as conn:
            ended = await conn.execute(
                "UPDATE load_jobs SET state = ?, outcome = ?, progress = COALESCE(?, progress)"
                " WHERE id = ? AND owner = ? AND state = 'running'",
                (
                    state,
                    outcome,
                    None if progress is None else _progress_json(progress),
                    job.id,
                    owner,
                ),
            )
            await conn.execute("DELETE FROM load_job_files WHERE job_id = ?", (job.id,))
            if not ended:  # cancelled by its asker, who waits no more: nobody will read it
                await conn.execute(
                    "DELETE FROM load_jobs WHERE id = ? AND state = 'cancelled'", (job.id,)
                )


def _job(row: Row, previous: str | None, files: Sequence[Row]) -> Job:
    return Job(
        id=int(row["id"]),
        conversation=row["conversation"],
        scope=str(row["scope"]),
        name=str(row["name"]),
        requested_by=str(row["requested_by"]),
        attempts=int(row["attempts"]),
        previous_owner=previous,
        files=tuple(
            JobFile(
                str(f["name"]), f["origin"], tuple(json.loads(f["folder"])), bytes(f["content"])
            )
            for f in files
        ),
    )

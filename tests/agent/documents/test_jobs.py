"""Loads as jobs on PostgreSQL: queued by one side, run by a worker, reported back; taken over
from a worker that died; stopped and rolled back when their asker gives up."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.db import Database, open_database
from agent.documents.embed import Embedder
from agent.documents.job_runner import JobRunner
from agent.documents.jobs import MAX_ATTEMPTS, JobFailed, LoadJobs
from agent.documents.library import Library
from agent.documents.loads import FileInput, Progress
from tests import pdfs
from tests.waiting import until

CONVERSATION = "slack:T1:C1"
SCOPE = "slack:T1"


@pytest.fixture
def backend() -> str:
    return "lite"


@pytest.fixture
def state() -> str:
    """The queue is a PostgreSQL table."""
    return "postgresql"


@pytest.fixture
async def db(state_location: str) -> AsyncIterator[Database]:
    """A second connection pool on the library's database: the asker's, or a worker's."""
    async with open_database(state_location) as database:
        yield database


async def _no_job(db: Database) -> bool:
    return await db.fetchone("SELECT 1 FROM load_jobs") is None


async def test_a_queued_load_is_run_by_a_worker_and_reported_to_its_asker(
    library: Library, db: Database, tmp_path: Path
) -> None:
    jobs = LoadJobs(db, library.registry)
    runner = JobRunner(library, jobs, beat_seconds=0.05, idle_seconds=0.05)
    working = asyncio.create_task(runner.run())
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)
    seen: list[Progress] = []
    job = await jobs.enqueue(CONVERSATION, SCOPE, "manual", [FileInput(path)], "alice")
    report = await jobs.wait(job, seen.append)
    await runner.close()
    await working
    assert [f.status for f in report.files] == ["loaded"] and report.passages > 0
    assert report.source is not None and report.source.passages == report.passages
    assert [s.name for s in await library.links.attached(CONVERSATION)] == ["manual"]
    assert seen and seen[-1].pages_total == 6
    assert await db.fetchone("SELECT 1 FROM load_jobs") is None  # nothing left behind
    found = await library.search_sources(SCOPE, ["manual"], pdfs.manual_marker(4), top_k=3)
    assert any(r.page == 4 for r in found.results)


async def test_a_job_whose_worker_died_is_taken_over_and_its_half_load_rolled_back(
    library: Library, db: Database, embedder: Embedder, tmp_path: Path
) -> None:
    jobs = LoadJobs(db, library.registry)
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4)
    job_id = await jobs.enqueue(None, SCOPE, "manual", [FileInput(path)], "alice")
    # A worker on another host claims it, starts the file, and dies.
    dead = "otherhost:4242"
    claimed = await jobs.claim(dead)
    assert claimed is not None and claimed.id == job_id
    registry = library.registry
    source = await registry.open_for_loading(
        SCOPE, "manual", model=embedder.model_id, dim=embedder.dim, created_by="alice"
    )
    half = await registry.add_file(
        source.id,
        name="manual.pdf",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size=path.stat().st_size,
        loaded_by="alice",
        owner=dead,
    )
    assert half is not None
    await db.write("UPDATE load_jobs SET heartbeat = heartbeat - 3600")

    runner = JobRunner(library, jobs, beat_seconds=0.05, idle_seconds=0.05, stale_after=30)
    working = asyncio.create_task(runner.run())
    report = await jobs.wait(job_id)
    await runner.close()
    await working
    assert [f.status for f in report.files] == ["loaded"]
    # The dead worker's source held only its half-done file: rolled back and removed, as a
    # failed first load is; the new load made the source again, with its passages once.
    assert await registry.get(source.id) is None
    assert report.source is not None and report.source.id != source.id
    assert [f.status for f in await registry.files(report.source.id)] == ["ready"]
    assert report.source.passages == report.passages > 0


async def test_an_asker_that_gives_up_stops_the_load_and_nothing_of_it_shows(
    library: Library, db: Database, tmp_path: Path
) -> None:
    jobs = LoadJobs(db, library.registry)
    runner = JobRunner(library, jobs, beat_seconds=0.02, idle_seconds=0.02)
    working = asyncio.create_task(runner.run())
    path = pdfs.make_manual_pdf(tmp_path / "big.pdf", 600)
    started = asyncio.Event()

    def progressed(progress: Progress) -> None:
        if progress.pages_done > 0:
            started.set()

    job = await jobs.enqueue(CONVERSATION, SCOPE, "big", [FileInput(path)], "alice")
    waiting = asyncio.create_task(jobs.wait(job, progressed))
    await asyncio.wait_for(started.wait(), 60)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await until(lambda: _no_job(db), "the cancelled job cleared")
    await runner.close()
    await working
    assert runner.finished == 0
    assert await library.sources(SCOPE) == []
    assert await library.links.attached(CONVERSATION) == []


async def test_a_job_that_keeps_killing_its_workers_is_given_up_with_a_sentence(
    library: Library, db: Database, tmp_path: Path
) -> None:
    jobs = LoadJobs(db, library.registry)
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    job_id = await jobs.enqueue(None, SCOPE, "manual", [FileInput(path)], "alice")
    for attempt in range(MAX_ATTEMPTS):
        claimed = await jobs.claim(f"host{attempt}:1", stale_after=30)
        assert claimed is not None and claimed.attempts == attempt + 1
        await db.write("UPDATE load_jobs SET heartbeat = heartbeat - 3600")
    assert await jobs.claim("host9:1", stale_after=30) is None
    with pytest.raises(JobFailed, match=f"stopped {MAX_ATTEMPTS} workers"):
        await jobs.wait(job_id)

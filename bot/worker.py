"""``archivist worker``: runs the loads other processes queue, until SIGTERM or SIGINT.

With ``[ingest] queue`` on, the bot replicas store each load as a job in PostgreSQL and wait
for its outcome; workers, on cores of their own, claim and run them. Stopping, a worker lets
its loads finish within ``[server] shutdown_grace``, then rolls the rest back and puts them
back in the queue for another worker; a worker killed outright is noticed by its missing
heartbeat and its jobs are taken over.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from agent.documents.job_runner import JobRunner
from bot.app import open_jobs
from bot.config import Settings, StartupError
from bot.health import HealthServer

log = logging.getLogger("archivist")

NOT_QUEUED = (
    "archivist worker runs queued loads: set [storage] database_url (PostgreSQL) and"
    " [ingest] queue = true, for the bot and its workers alike."
)


async def work(settings: Settings, concurrency: int) -> None:
    """Run queued loads, ``concurrency`` at a time, until stopped."""
    if not settings.ingest.queue:
        raise StartupError(NOT_QUEUED)
    async with open_jobs(settings) as runtime:
        stale = settings.ingest.job_stale_seconds
        runner = JobRunner(
            runtime.library,
            runtime.jobs,
            concurrency=concurrency,
            stale_after=stale,
            beat_seconds=stale / 6,
            telemetry=runtime.metrics,
        )
        runtime.metrics.watch_jobs(runner)
        health = HealthServer(
            checks=runtime.checks,
            metrics=runtime.metrics,
            host=settings.server.host,
            port=settings.server.port,
        )
        await health.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        working = asyncio.create_task(runner.run())
        log.info("worker ready: up to %d loads at a time", concurrency)
        try:
            await stop.wait()
            log.info("shutting down")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await runner.close(settings.server.shutdown_grace)
            await working
            await health.close()
    log.info("stopped")

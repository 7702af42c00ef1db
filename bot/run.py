"""``archivist run``: the bot's lifecycle around one core.

Start-up says which platforms are configured, checks every dependency and says which is
missing, then serves the adapters plus ``/healthz`` and ``/metrics`` until SIGTERM or SIGINT.
Shutdown refuses new messages and loads, gives answers and loads under way
``[server] shutdown_grace`` seconds (loads still running then are rolled back, and say so),
lets the adapters deliver what their handlers have left to say, then closes SQLite and Milvus.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Protocol

from agent.errors import ArchiveUnavailable, ArchivistError
from bot.admin import serving_admin
from bot.app import build_adapters, configured_platforms, open_runtime
from bot.config import Settings, StartupError
from bot.health import Check, HealthServer, run_checks

log = logging.getLogger("archivist")

NO_PLATFORM = (
    "No chat platform is configured: set DISCORD_TOKEN for Discord, or SLACK_BOT_TOKEN with"
    " SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP) for Slack."
)


class Adapter(Protocol):
    """A chat platform connection, as the lifecycle drives it."""

    name: str

    async def run(self) -> None:
        """Serve until closed; raise an ArchivistError saying what to fix if it cannot.

        Called again after it raised, to retry."""

    async def wait_until_serving(self) -> None:
        """Return once the current run is connected (or listening)."""

    def serving(self) -> bool:
        """Whether the current (or, once it stopped, the last) run got connected."""
        raise NotImplementedError

    async def ready(self) -> None:
        """Return when connected, raise with a sentence when not (for ``/healthz``)."""

    async def close(self) -> None:
        """Stop taking events and disconnect."""


# How long a closed adapter may take to return from run() before it is cancelled.
_ADAPTER_CLOSE_TIMEOUT = 10.0
# A platform that fails is retried after 1 s, then 2, 4… up to 5 minutes; once it serves
# again the next failure starts over at 1 s.
_RETRY_FIRST = 1.0
_RETRY_MAX = 300.0


async def serve(settings: Settings) -> None:
    """Run the bot until SIGTERM/SIGINT or until an adapter fails for good.

    Raises :class:`StartupError` (or another ArchivistError) with the reason it stopped.
    """
    platforms = configured_platforms(settings)
    if not platforms:
        raise StartupError(NO_PLATFORM)
    log.info("configured: %s", ", ".join(platforms))
    async with open_runtime(settings) as runtime:
        await _report_dependencies(runtime.checks)
        # What is alive now (model, modules, connections) lives as long as the bot: kept out
        # of the collector's full passes, their pauses shrink from ~140 ms to ~10 ms.
        gc.collect()
        gc.freeze()
        adapters: Sequence[Adapter] = build_adapters(settings, runtime.core)
        supervised = Platforms(adapters)
        checks = dict(runtime.checks)
        checks.update({p.adapter.name: p.check for p in supervised.each})
        health = HealthServer(
            checks=checks,
            metrics=runtime.metrics,
            host=settings.server.host,
            port=settings.server.port,
            advisory=frozenset({"llm"}),
        )
        await health.start()
        # Commands beside the bot (a load, a search) hand it their work: it holds the archive.
        async with serving_admin(runtime.core, settings.storage.data_dir) as admin:
            log.info("admin endpoint for local commands on %s", admin.url)
            running = supervised.start()
            try:
                await _until_stopped(supervised)
            finally:
                supervised.stopping.set()  # no more retries
                # Answers and loads first, while the platforms are still connected to deliver
                # them; new messages and loads meanwhile are told the bot is restarting.
                try:
                    await runtime.core.close(settings.server.shutdown_grace)
                    await _close(running)
                finally:
                    await health.close()
    log.info("stopped")


class Platform:
    """One adapter under supervision: run, and after a failure reported, run again."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.failure: str | None = None
        """The last failure's sentence, until the platform serves again."""
        self.error: BaseException | None = None
        self.served = False

    async def check(self) -> None:
        """For ``/healthz``: the last failure while it lasts, else the adapter's own check."""
        if self.failure is not None:
            raise PlatformDown(self.failure)
        await self.adapter.ready()


class PlatformDown(ArchivistError):
    """A platform failed (and waits to be retried), or all did; the message says why."""


class Platforms:
    """Every configured platform, each kept running on its own: one that fails is reported
    in one sentence and retried with backoff while the others serve. Only when all have
    failed before any served is start-up given up (:attr:`gave_up`, :attr:`reason`)."""

    def __init__(self, adapters: Sequence[Adapter]) -> None:
        self.each = [Platform(a) for a in adapters]
        self.stopping = asyncio.Event()
        self.gave_up = asyncio.Event()
        self.reason: BaseException | None = None

    def start(self) -> dict[asyncio.Task[None], Adapter]:
        """A supervising task per platform, with its adapter."""
        return {
            asyncio.create_task(self._keep_running(p), name=p.adapter.name): p.adapter
            for p in self.each
        }

    async def _keep_running(self, platform: Platform) -> None:
        delay = _RETRY_FIRST
        while not self.stopping.is_set():
            if await self._run_once(platform):
                delay = _RETRY_FIRST
            if self.stopping.is_set():
                return
            if not any(p.served for p in self.each) and all(p.failure for p in self.each):
                self.reason = self.reason or self._why_not_started()
                self.gave_up.set()
                return
            log.error("%s: %s Retrying in %g s.", platform.adapter.name, platform.failure, delay)
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, _RETRY_MAX)

    async def _run_once(self, platform: Platform) -> bool:
        """Run the adapter until it stops; whether it served meanwhile."""
        adapter = platform.adapter
        run = asyncio.create_task(adapter.run())
        serving = asyncio.create_task(adapter.wait_until_serving())
        try:
            await asyncio.wait({run, serving}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                if platform.failure is not None:
                    log.info("%s: serving again", adapter.name)
                platform.failure = platform.error = None
            await asyncio.wait({run})
        finally:
            serving.cancel()
            run.cancel()  # only if this task itself is cancelled: run is done otherwise
        served = adapter.serving()
        platform.served = platform.served or served
        error = run.exception()
        platform.error = error
        platform.failure = _sentence(error)
        if error is not None and not isinstance(error, ArchivistError):
            log.debug("%s stopped by", adapter.name, exc_info=error)
        return served

    def _why_not_started(self) -> BaseException:
        if len(self.each) == 1 and self.each[0].error is not None:
            return self.each[0].error
        return PlatformDown(
            "No chat platform could start: "
            + " ".join(f"{p.adapter.name}: {p.failure}" for p in self.each)
        )


def _sentence(error: BaseException | None) -> str:
    """A platform's failure in one sentence (the traceback of an unexpected one is at DEBUG)."""
    if error is None:
        return "stopped unexpectedly."
    if isinstance(error, ArchivistError):
        return str(error)
    return f"stopped by an unexpected {type(error).__name__} (run with -v for the traceback)."


async def _report_dependencies(checks: Mapping[str, Check]) -> None:
    """Fail on a store that does not answer; only warn about the model, whose failures reach
    users as sentences anyway and which may come back on its own."""
    report = await run_checks(checks)
    for name, outcome in report.items():
        if outcome["ok"]:
            log.info("%s: ready", name)
        elif name == "llm":
            log.warning("llm: %s (answers will say so until it is back)", outcome["error"])
        else:
            raise ArchiveUnavailable(f"{name}: {outcome['error']}")
    if "llm" not in report:
        log.warning("llm: not configured; answers are archive search results")


async def _until_stopped(platforms: Platforms) -> None:
    """Return on SIGTERM or SIGINT; raise why the platforms could not start if none did."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    giving_up = asyncio.create_task(platforms.gave_up.wait())
    try:
        await asyncio.wait({stopping, giving_up}, return_when=asyncio.FIRST_COMPLETED)
        if platforms.reason is not None:
            raise platforms.reason
        log.info("shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopping.cancel()
        giving_up.cancel()


async def _close(running: Mapping[asyncio.Task[None], Adapter]) -> None:
    """Close every adapter and wait for its run() to return (cancelled if it will not)."""
    for adapter in running.values():
        try:
            await adapter.close()
        except Exception:  # the others must still close
            log.exception("closing %s failed", adapter.name)
    _, late = await asyncio.wait(running, timeout=_ADAPTER_CLOSE_TIMEOUT)
    for task in late:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)

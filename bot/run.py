"""``archivist run``: the bot's lifecycle around one core.

Start-up says which platforms are configured, checks every dependency and says which is
missing, then serves the adapters plus ``/healthz`` and ``/metrics`` until SIGTERM or SIGINT.
Shutdown stops the adapters first (no new messages), gives answers under way
``[server] shutdown_grace`` seconds, then closes SQLite and Milvus.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Protocol

from agent.errors import ArchiveUnavailable, ArchivistError
from bot.app import build_adapters, configured_platforms, open_runtime
from bot.config import Settings
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
        """Serve until closed; raise an ArchivistError saying what to fix if it cannot."""

    async def ready(self) -> None:
        """Return when connected, raise with a sentence when not (for ``/healthz``)."""

    async def close(self) -> None:
        """Stop taking events and disconnect."""


# How long a closed adapter may take to return from run() before it is cancelled.
_ADAPTER_CLOSE_TIMEOUT = 10.0


class StartupError(ArchivistError):
    """The bot cannot start; the message says why and what to do."""


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
        checks = dict(runtime.checks)
        checks.update({a.name: a.ready for a in adapters})
        health = HealthServer(
            checks=checks,
            metrics=runtime.metrics,
            host=settings.server.host,
            port=settings.server.port,
            advisory=frozenset({"llm"}),
        )
        try:
            port = await health.start()
        except OSError as exc:
            raise StartupError(
                f"Cannot serve /healthz on {settings.server.host}:{settings.server.port}"
                f" ({exc.strerror}): set [server] port (ARCHIVIST_SERVER_PORT) to a free port."
            ) from exc
        log.info("serving /healthz and /metrics on http://%s:%d", settings.server.host, port)
        running = {asyncio.create_task(a.run(), name=a.name): a for a in adapters}
        try:
            await _until_stopped(running)
        finally:
            # Answers first, while the platforms are still connected to deliver them; new
            # messages meanwhile are told the bot is restarting.
            try:
                await runtime.core.close(settings.server.shutdown_grace)
                await _close(running)
            finally:
                await health.close()
    log.info("stopped")


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


async def _until_stopped(
    running: Mapping[asyncio.Task[None], Adapter],
) -> None:
    """Return on SIGTERM or SIGINT; raise if an adapter stops on its own."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({stopping, *running}, return_when=asyncio.FIRST_COMPLETED)
        for task in (t for t in running if t in done):
            # An adapter that returns or fails on its own cannot serve: stop everything.
            error = task.exception()
            if error is not None:
                raise error
            raise StartupError(f"{running[task].name} stopped unexpectedly: see the log.")
        log.info("shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopping.cancel()


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

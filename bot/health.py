"""``/healthz`` and ``/metrics`` over HTTP, for load balancers, orchestrators and Prometheus.

``/healthz`` runs every check at once and answers 200 when all pass, 503 with the failing
ones' sentences otherwise; an advisory check (the model: the bot still answers, saying it is
down) only turns ``ok`` into ``degraded``. ``/metrics`` is Prometheus text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from agent.errors import ArchivistError
from bot.config import StartupError
from bot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]
"""Returns when a dependency is ready; raises (ideally an ArchivistError sentence) when not."""

# Longer than any one check's own timeout, shorter than a typical probe timeout.
CHECK_TIMEOUT = 8.0


async def run_checks(checks: Mapping[str, Check]) -> dict[str, dict[str, Any]]:
    """Each check's outcome: ``{"ok": True}`` or ``{"ok": False, "error": sentence}``."""
    names = list(checks)
    outcomes = await asyncio.gather(
        *(asyncio.wait_for(checks[name](), CHECK_TIMEOUT) for name in names),
        return_exceptions=True,
    )
    report: dict[str, dict[str, Any]] = {}
    for name, outcome in zip(names, outcomes, strict=True):
        if outcome is None:
            report[name] = {"ok": True}
        elif isinstance(outcome, ArchivistError):
            report[name] = {"ok": False, "error": str(outcome)}
        elif isinstance(outcome, asyncio.TimeoutError):
            report[name] = {"ok": False, "error": f"no answer within {CHECK_TIMEOUT:g} s"}
        else:
            log.error("health check %s failed", name, exc_info=outcome)
            report[name] = {"ok": False, "error": f"check failed ({type(outcome).__name__})"}
    return report


class HealthServer:
    """Serves ``/healthz`` and ``/metrics`` on one port until closed."""

    def __init__(
        self,
        *,
        checks: Mapping[str, Check],
        metrics: Metrics,
        host: str,
        port: int,
        advisory: frozenset[str] = frozenset(),
    ) -> None:
        self._checks = checks
        self._advisory = advisory
        self._metrics = metrics
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Start listening, and say where; returns the port (useful when configured as 0 for
        any free port). Raises :class:`StartupError` when the port is taken."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._render_metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            await self.close()
            raise StartupError(
                f"Cannot serve /healthz on {self._host}:{self._port} ({exc.strerror}):"
                " set [server] port (ARCHIVIST_SERVER_PORT) to a free port."
            ) from exc
        port = int(self._runner.addresses[0][1])
        log.info("serving /healthz and /metrics on http://%s:%d", self._host, port)
        return port

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await run_checks(self._checks)
        failing = {name for name, check in report.items() if not check["ok"]}
        ready = not failing - self._advisory
        status = "unavailable" if not ready else "degraded" if failing else "ok"
        return web.json_response({"status": status, "checks": report}, status=200 if ready else 503)

    async def _render_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

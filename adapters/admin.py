"""The running bot's local admin endpoint: the command line hands it what needs the archive.

A bot on the embedded default holds the Milvus Lite file, which one process at a time may
open; ``archivist load``, ``sources search`` and ``sources delete`` beside it would be refused.
Instead they send their work here: loads run in the bot (drained at shutdown like any other),
their progress streamed back as it happens.

HTTP on 127.0.0.1 only, every request carrying a bearer token that the bot writes to a file
only its owner may read (see ``bot.admin``): a local user who cannot read that file cannot
drive the bot. Files are named by path and read by the bot: the same user, the same machine.

Wire format: JSON in; JSON out, or for a load one JSON object per line (``{"progress": …}``
as pages go by, then ``{"report": …}``); a failure is ``{"error": sentence, "kind": class}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.core import INTERNAL_ERROR, SEARCH_MODES, ArchivistError, Core, FileInput, Progress

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ArchivistError):
    """A request the command line would never send: its fields are missing or mistyped."""


def failure(error: BaseException, where: str) -> dict[str, Any]:
    """The wire form of a failure: our sentence and class, or the internal-error sentence."""
    if isinstance(error, ArchivistError):
        log.info("admin %s: %s", where, error)
        return {"error": str(error), "kind": type(error).__name__}
    log.error("admin %s failed", where, exc_info=error)
    return {"error": INTERNAL_ERROR, "kind": "InternalError"}


def _field(body: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind):
        raise BadRequest(f"'{name}' must be a {kind.__name__}.")
    return value


class AdminServer:
    """Serves the admin endpoint on 127.0.0.1 until closed."""

    def __init__(self, core: Core, token: str) -> None:
        self._core = core
        self._token = token.encode()
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1; returns the port."""
        app = web.Application(middlewares=[self._authorised])
        app.router.add_get("/ping", self._ping)
        app.router.add_post("/load", self._load)
        app.router.add_post("/search", self._search)
        app.router.add_post("/delete", self._delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _authorised(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(given.encode(), self._token):
            log.warning("admin: refused a request without the token (%s)", request.path)
            return web.json_response({"error": "Not authorised.", "kind": "Refused"}, status=401)
        return await handler(request)

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _load(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)

        async def send(line: dict[str, Any]) -> None:
            await response.write(json.dumps(line).encode() + b"\n")

        try:
            body = await request.json()
            files = [
                FileInput(Path(_field(f, "path", str)), folder=tuple(_field(f, "folder", list)))
                for f in _field(body, "files", list)
            ]
            where = (_field(body, "scope", str), _field(body, "name", str))
            by = _field(body, "by", str)
        except Exception as exc:
            await send(failure(exc, "load"))
            return response
        # The loader reports progress synchronously, between its awaits: a queue carries it to
        # this handler, which writes each report as it comes.
        reports: asyncio.Queue[Progress | None] = asyncio.Queue()
        load = asyncio.create_task(
            self._core.load(None, *where, files, by=by, progress=reports.put_nowait)
        )
        load.add_done_callback(lambda _: reports.put_nowait(None))
        try:
            while (progress := await reports.get()) is not None:
                await send({"progress": asdict(progress)})
        except (ConnectionError, asyncio.CancelledError):
            # The command was interrupted (Ctrl-C): stop its load, which rolls back, as it
            # would have in the command's own process.
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError, ArchivistError):
                await load
            log.info("admin load of %s: the command went away, load stopped", where[1])
            raise
        try:
            report = load.result()
        except Exception as exc:  # every failure becomes a line; the bot keeps serving
            await send(failure(exc, "load"))
        else:
            await send({"report": asdict(report)})
        await response.write_eof()
        return response

    async def _search(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            mode = body.get("mode")
            if mode is not None and mode not in SEARCH_MODES:
                raise BadRequest(f"'mode' must be one of {', '.join(SEARCH_MODES)}.")
            found = await self._core.search_sources(
                _field(body, "scope", str),
                [str(name) for name in _field(body, "names", list)],
                _field(body, "query", str),
                top_k=_field(body, "top_k", int),
                page=_field(body, "page", int),
                mode=mode,
            )
        except Exception as exc:
            return web.json_response(failure(exc, "search"))
        return web.json_response({"page": asdict(found)})

    async def _delete(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            source = await self._core.delete_source(
                _field(body, "scope", str), _field(body, "name", str)
            )
        except Exception as exc:
            return web.json_response(failure(exc, "delete"))
        return web.json_response({"source": asdict(source)})

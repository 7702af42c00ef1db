"""The Slack adapter's listeners on a bolt ``AsyncApp``: one way in, one way to fail.

:meth:`Listeners.register` names every event, command and action and the method that
handles it (:mod:`adapters.slack.chat`, :mod:`adapters.slack.sources`). Each runs through
:meth:`Listeners._reported`: acknowledged first, counted as work that shutdown waits for,
and on failure answered with :func:`adapters.failures.sentence_for`'s sentence (privately
for a command or action, in the thread for an event), so no listener catches its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.failures import sentence_for
from adapters.loading import shared_with
from adapters.slack.chat import RESET_ACTION, Chat
from adapters.slack.options import SlackOptions
from adapters.slack.requests import JSON, Request
from adapters.slack.sources import ATTACH_ACTION, Sources
from agent.core import Core

log = logging.getLogger(__name__)

# What adapters/slack_manifest.yml declares to Slack; register() handles each one.
COMMANDS = ("/attach", "/detach", "/sources", "/load", "/memory", "/search", "/reset")
Work = Callable[[Request], Awaitable[None]]
Listener = Callable[..., Awaitable[None]]


class Listeners:
    """The bot's behaviour on Slack, over one core."""

    def __init__(self, core: Core, options: SlackOptions, api_base_url: str) -> None:
        self._core = core
        self._chat = Chat(core, options)
        self._sources = Sources(core, options, api_base_url)
        self._working: set[asyncio.Task[object]] = set()

    def register(self, app: AsyncApp) -> None:
        """Attach every listener; bolt runs the first match, so file shares come first."""
        chat, sources, reported = self._chat, self._sources, self._reported
        app.middleware(self._drop_duplicates)
        app.event({"type": "message", "subtype": "file_share"})(reported(self._file_share))
        app.event("app_mention")(reported(chat.on_mention))
        # Subscribed events we do not act on are acknowledged, or Slack retries them.
        app.event("message")(_ignore)
        app.event("file_shared")(_ignore)
        app.command("/attach")(reported(sources.attach))
        app.command("/detach")(reported(sources.detach))
        app.command("/sources")(reported(sources.sources))
        app.command("/load")(reported(sources.load))
        app.command("/memory")(reported(chat.memory))
        app.command("/search")(reported(chat.search))
        app.command("/reset")(reported(chat.reset))
        app.action(ATTACH_ACTION)(reported(sources.attach_chosen))
        app.action(RESET_ACTION)(reported(chat.reset_confirmed))

    async def _file_share(self, request: Request) -> None:
        """Load a message's PDFs, then answer the question asked with them, in that order."""
        await self._sources.on_file_share(request)
        if request.addressed and self._chat.answers_after_loading(request.event):
            _, question = shared_with(request.question)
            if question:
                await self._chat.answer(request, question)

    def _reported(self, work: Work) -> Listener:
        """``work`` as a bolt listener: ack, track, read the request, run, report a failure."""

        async def listener(
            ack: AsyncAck,
            body: JSON,
            client: AsyncWebClient,
            context: AsyncBoltContext,
            respond: AsyncRespond | None,
        ) -> None:
            self._track()
            await ack()
            request = Request.of(body, client, bot_user_id=context.bot_user_id, respond=respond)
            try:
                await work(request)
            except Exception as exc:  # the adapter's one report of a failure
                await request.report(sentence_for(exc, request.where))

        return listener

    def _track(self) -> None:
        """Count the running listener as work that shutdown waits for."""
        task = asyncio.current_task()
        if task is not None:
            self._working.add(task)
            task.add_done_callback(self._working.discard)

    async def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for answers and loads under way to be posted."""
        current = asyncio.current_task()
        pending = {t for t in self._working if t is not current}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _drop_duplicates(
        self, body: JSON, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Answer a re-delivered event at once (asking Slack not to retry) and do nothing.

        Slack retries events it thinks were not acknowledged, and sometimes sends the same
        message again under a new event id: both are recognised here.
        """
        event_id = body.get("event_id")
        if event_id and not await self._core.first_delivery(f"slack:event:{event_id}"):
            log.info("event %s already handled", event_id)
            return BoltResponse(status=200, body="", headers={"x-slack-no-retry": "1"})
        await next()
        return None


async def _ignore() -> None:
    """Acknowledge an event we subscribe to but do not act on."""

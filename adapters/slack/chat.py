"""Talking to a channel's agent: mentions, and /memory, /search, /reset (with its button)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.live import LiveMessage
from adapters.policy import Action, reads_uploads
from adapters.slack.access import require
from adapters.slack.files import may_be_pdf
from adapters.slack.options import SlackOptions
from adapters.slack.render import escape, message_blocks, reply_text
from adapters.slack.requests import Request
from agent.core import Core, Incoming

log = logging.getLogger(__name__)

EMPTY_QUESTION = "Ask me something after the mention, e.g. `@archivist what does chapter 3 say?`"
RESET_ACTION = "archivist_reset"
RESET_QUESTION = "Forget this channel's conversation? Core memory and sources stay."


class Chat:
    """Questions to the channel's agent and a look at its memory."""

    def __init__(self, core: Core, options: SlackOptions) -> None:
        self._core = core
        self._options = options

    async def on_mention(self, request: Request) -> None:
        """Answer a mention in its thread; a question asked with PDFs to load is answered by
        the file share listener, once they are in (:meth:`answers_after_loading`)."""
        if self.answers_after_loading(request.event):
            return
        await self.answer(request, request.question)

    def answers_after_loading(self, event: dict[str, Any]) -> bool:
        """Whether a message's PDFs are for loading (or refusing) by the file share listener,
        which then answers the question asked with them."""
        pdfs = any(may_be_pdf(f) for f in event.get("files") or [])
        return pdfs and reads_uploads(self._options.ingest_uploads, addressed=True)

    async def answer(self, request: Request, text: str) -> None:
        """Answer ``text``, said in a message that mentions the bot, in the message's thread,
        with 👀 on the message while the agent works; once per message."""
        event, channel = request.event, request.place.channel
        ts = str(event["ts"])
        if not await self._core.first_delivery(f"slack:mention:{channel}:{ts}"):
            return
        await require(request, Action.ASK, self._options)
        if not text:
            await request.post(EMPTY_QUESTION)
            return
        client = request.client

        async def post(text: str, blocks: list[dict[str, Any]] | None = None) -> str:
            sent = await client.chat_postMessage(
                channel=channel, thread_ts=request.thread, text=text, blocks=blocks
            )
            return str(sent["ts"])

        async def edit(at: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
            await client.chat_update(channel=channel, ts=at, text=text, blocks=blocks)

        # The reply appears as the model writes it, in the message that will hold it.
        live = LiveMessage(
            lambda t: post(escape(t)), lambda at, t: edit(at, escape(t)), every=1.0, limit=3000
        )
        # Queued before the reaction and the reply are awaited, in arrival order.
        turn = asyncio.create_task(
            self._core.ask(
                Incoming(
                    request.place.conversation,
                    request.place.scope,
                    text,
                    f"slack:{request.user}",
                    speaker_name(event),
                    on_partial=live,
                )
            )
        )
        await _react(client.reactions_add, channel, ts)
        try:
            reply = await turn
        finally:
            preview = await live.finish()
        text_out = reply_text(reply, show_thoughts=self._options.show_thoughts)
        for blocks in message_blocks(text_out):
            fallback = blocks[0]["text"]["text"][:3000]
            if preview is not None:
                at, preview = preview, None
                try:
                    await edit(at, fallback, blocks)
                    continue
                except SlackApiError as exc:
                    log.info("reply preview %s not updated: %s", at, exc.response.get("error"))
            await post(fallback, blocks)
        await _react(client.reactions_remove, channel, ts)

    async def memory(self, request: Request) -> None:
        """``/memory``: the channel agent's core memory and memory sizes."""
        await require(request, Action.SHOW_MEMORY, self._options)
        view = await self._core.memory(request.place.conversation)
        sources = ", ".join(view.sources) or "none attached"
        await request.respond(
            f"```{escape(view.core)[:2800]}```\n{view.messages} messages;"
            f" {view.passages} passages in archival memory ({escape(sources)})."
        )

    async def search(self, request: Request) -> None:
        """``/search query``: the attached sources' best passages, without the model."""
        await require(request, Action.SEARCH, self._options)
        query = request.text.strip()
        if not query:
            await request.respond("Usage: /search QUERY")
            return
        found = await self._core.search(request.place.conversation, query)
        if not found.results:
            await request.respond("No results: is a source attached here? (/sources)")
            return
        lines = [
            f"*[{r.rank}] {escape(r.citation)}* {escape(' '.join(r.text.split())[:300])}"
            for r in found.results
        ]
        await request.respond("\n".join(lines)[:3000])

    async def reset(self, request: Request) -> None:
        """``/reset``: a confirm button that only the person who asked may press."""
        await require(request, Action.RESET, self._options)
        button = {
            "type": "button",
            "action_id": RESET_ACTION,
            "style": "danger",
            "text": {"type": "plain_text", "text": "Forget"},
            "value": request.user,
        }
        await request.respond(
            "Forget this channel's conversation?",
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": RESET_QUESTION}},
                {"type": "actions", "elements": [button]},
            ],
        )

    async def reset_confirmed(self, request: Request) -> None:
        """The /reset button: only its author's press counts (the author is a manager)."""
        if request.user != request.body["actions"][0].get("value"):
            await request.respond(
                "Only the person who ran /reset can confirm it.",
                replace_original=False,
                response_type="ephemeral",
            )
            return
        forgotten = await self._core.reset(request.place.conversation)
        await request.respond(
            f"Forgot {forgotten} messages; sources stay attached.", replace_original=True
        )


def speaker_name(event: dict[str, Any]) -> str:
    """A speaker's name as the event gives it (the id when it gives none)."""
    profile = event.get("user_profile") or {}
    return str(
        profile.get("display_name") or profile.get("real_name") or event.get("user") or "someone"
    )


async def _react(method: Callable[..., Awaitable[object]], channel: str, ts: str) -> None:
    """Add or remove 👀; a courtesy that may fail (already there, no scope) without harm."""
    try:
        await method(channel=channel, timestamp=ts, name="eyes")
    except SlackApiError as exc:
        log.info("%s failed: %s", method.__name__, exc.response.get("error"))

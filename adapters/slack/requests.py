"""What a Slack listener is given: where and by whom it was asked, and how to answer.

Events, slash commands and Block Kit actions carry the team, channel and user in different
places; :meth:`Request.of` reads them once, so a listener only sees a :class:`Request`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Respond = Callable[..., Awaitable[Any]]
_MENTION = re.compile(r"<@[A-Z0-9]+>")


@dataclass(frozen=True)
class Place:
    """A channel's agent (``slack:<team>:<channel>``) and its workspace's sources (scope)."""

    team: str
    channel: str

    @property
    def conversation(self) -> str:
        """The channel's agent."""
        return f"slack:{self.team}:{self.channel}"

    @property
    def scope(self) -> str:
        """The workspace's sources."""
        return f"slack:{self.team}"


@dataclass(frozen=True)
class Request:
    """One event, slash command or action, as the listener that handles it sees it."""

    body: JSON
    place: Place
    user: str
    client: AsyncWebClient
    bot_user_id: str | None = None
    responder: Respond | None = None
    """bolt's ``respond``: set for commands and actions, None for events."""

    @classmethod
    def of(
        cls,
        body: JSON,
        client: AsyncWebClient,
        *,
        bot_user_id: str | None = None,
        respond: Respond | None = None,
    ) -> Request:
        """The request behind a bolt payload of any kind."""
        event: JSON = body.get("event") or {}
        team = body.get("team_id") or (body.get("team") or {}).get("id") or event.get("team")
        channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
        user = body.get("user_id") or (body.get("user") or {}).get("id") or event.get("user")
        return cls(
            body,
            Place(str(team or ""), str(channel or event.get("channel") or "")),
            str(user or ""),
            client,
            bot_user_id,
            # bolt hands every listener a ``respond``; only a payload's URL makes it work.
            respond if body.get("response_url") else None,
        )

    @property
    def event(self) -> JSON:
        """An event's inner event (``{}`` for commands and actions)."""
        event: JSON = self.body.get("event") or {}
        return event

    @property
    def text(self) -> str:
        """A command's text, or an event's message text."""
        return str(self.body.get("text") or self.event.get("text") or "")

    @property
    def question(self) -> str:
        """The text without mentions: what was said to the bot."""
        return _MENTION.sub(" ", self.text).strip()

    @property
    def addressed(self) -> bool:
        """Whether the message mentions the bot."""
        return bool(self.bot_user_id) and f"<@{self.bot_user_id}>" in self.text

    @property
    def thread(self) -> str | None:
        """The thread an event's answers belong in (the message's own, or the one it is in)."""
        ts = self.event.get("thread_ts") or self.event.get("ts")
        return None if ts is None else str(ts)

    @property
    def where(self) -> str:
        """What the log calls this request."""
        channel = self.place.channel
        if "command" in self.body:
            return f"{self.body['command']} in {channel}"
        if self.body.get("actions"):
            return f"action {self.body['actions'][0].get('action_id')} in {channel}"
        return f"{self.event.get('type', 'event')} {channel}/{self.event.get('ts')}"

    async def respond(self, text: str, **fields: Any) -> None:
        """Answer a command or an action through its ``response_url`` (private by default)."""
        if self.responder is None:
            raise RuntimeError(f"{self.where} has no response_url to answer")
        await self.responder(text=text, **fields)

    async def post(self, text: str) -> None:
        """Say ``text`` in the event's thread."""
        await self.client.chat_postMessage(
            channel=self.place.channel, thread_ts=self.thread, text=text
        )

    async def report(self, sentence: str) -> None:
        """Tell the user what failed: privately for a command or action, else in the thread."""
        try:
            if self.responder is not None:
                await self.respond(sentence)
            else:
                await self.post(f":warning: {sentence}")
        except (SlackApiError, aiohttp.ClientError, TimeoutError):
            log.warning("could not report a failure of %s", self.where, exc_info=True)

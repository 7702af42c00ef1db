"""A fake Slack (Web API, file server, Socket Mode, Events API over HTTP) on 127.0.0.1 for tests.

The real slack-bolt and slack_sdk talk to it over real sockets. Build the world,
start an app, then drive it the way users would::

    async with FakeSlack(mode="socket") as fake:
        general = fake.add_channel("general")
        alice = fake.add_user("alice")
        client = AsyncWebClient(fake.bot_token, base_url=fake.api_base)
        app = AsyncApp(client=client, signing_secret=fake.signing_secret)
        handler = AsyncSocketModeHandler(app, fake.app_token)
        await handler.connect_async()
        asked = await fake.mention(general, alice, "hi")
        await fake.wait_for(lambda: fake.messages(general, thread_ts=asked.ts)[1:])
        await handler.close_async()

What the fake models, as Slack does it:

* One workspace with users, channels (public, private, DMs), messages and threads
  (``ts``/``thread_ts``, reply counts on the parent), the bot's edits
  (``chat.update``) and deletions, reactions, ephemeral messages and files.
* The Web API methods a bot uses, answered ``{"ok": ...}`` with Slack's error
  names; tokens are checked (``not_authed``, ``invalid_auth``,
  ``not_allowed_token_type``). :meth:`FakeSlack.fail_next` injects a 429 with
  ``Retry-After`` (or any ``{"ok": false, "error": ...}``).
* Private file URLs that need ``Authorization: Bearer <bot token>``: without it
  Slack answers 200 with its HTML sign-in page, and so does the fake.
* Two transports for what users do (mentions, messages, file shares, slash
  commands, Block Kit actions): Socket Mode (``apps.connections.open``, a
  websocket at ``/link`` with ``hello``, envelopes, acks, ``disconnect``) or the
  Events API over HTTP (signed requests to :attr:`FakeSlack.events_url`, retries
  with ``X-Slack-Retry-Num``). Each delivery is a :class:`Delivery` recording
  the app's ack and how long it took.
* ``response_url`` posts (``/response/<id>``): ephemeral or in-channel answers,
  ``replace_original`` and ``delete_original``.

Every Web API call is kept in :attr:`FakeSlack.calls`, calls to methods the fake
does not know in :attr:`FakeSlack.unknown_methods`, and exceptions raised inside
the fake in :attr:`FakeSlack.errors`: a test should end with these last two
empty. Waiting is done with :meth:`FakeSlack.wait_for`, which re-checks a
predicate each time the fake records something, never with sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import re
import secrets
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

__all__ = [
    "ApiCall",
    "Delivery",
    "FakeSlack",
    "FileDownload",
    "Mode",
    "ResponsePost",
    "SlackError",
    "fake_slack",
]

JSON = dict[str, Any]
Mode = Literal["socket", "http"]
Handler = Callable[[JSON], Awaitable[JSON]]

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MAX_TEXT = 40_000
_MAX_BLOCKS = 50
_MAX_SECTION_TEXT = 3000
_MAX_HEADER_TEXT = 150
_STALE_SECONDS = 600
_BAD_SIGNATURE = "v0=" + "0" * 64
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="utf-8"><title>Slack</title></head>
<body class="signin">
<h1>Sign in to your workspace</h1>
<form id="signin_form" action="/signin" method="post">
<input type="email" name="email" placeholder="name@work-email.com">
<button type="submit">Sign In</button>
</form>
</body>
</html>
"""


class SlackError(Exception):
    """A Web API error answer: ``{"ok": false, "error": error}`` (plus ``extra``)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> JSON:
        """The JSON answer."""
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class ApiCall:
    """One Web API call: the method, its arguments (query, form and JSON body
    merged), the request headers, and what the fake answered."""

    method: str
    args: JSON
    headers: dict[str, str]
    status: int = 0
    response: JSON | None = None

    @property
    def ok(self) -> bool:
        """Whether the answer was ``{"ok": true}``."""
        return bool(self.response and self.response.get("ok"))


@dataclass
class FileDownload:
    """One GET on the file server: ``served`` is ``"file"`` (the bytes),
    ``"login"`` (Slack's HTML sign-in page), ``"missing"`` (404) or ``"failed"``
    (a failure injected with ``fail_next("files.download")``)."""

    file_id: str
    path: str
    authorization: str | None
    status: int
    content_type: str
    served: Literal["file", "login", "missing", "failed"]


@dataclass
class ResponsePost:
    """A post the app made to a ``response_url`` (``body`` is what it sent)."""

    delivery: Delivery | None
    body: JSON
    status: int

    @property
    def text(self) -> str:
        """The ``text`` posted."""
        return str(self.body.get("text") or "")

    @property
    def response_type(self) -> str | None:
        """``"ephemeral"``, ``"in_channel"`` or None when the app sent none."""
        value = self.body.get("response_type")
        return None if value is None else str(value)

    @property
    def replace_original(self) -> bool | None:
        """The ``replace_original`` flag as sent (None when absent)."""
        return _optional_flag(self.body.get("replace_original"))

    @property
    def delete_original(self) -> bool | None:
        """The ``delete_original`` flag as sent (None when absent)."""
        return _optional_flag(self.body.get("delete_original"))


@dataclass(eq=False)
class Delivery:
    """One request the fake delivered to the app: an Events API event, a slash
    command or an interactive payload, over Socket Mode or HTTP.

    Over Socket Mode ``status`` becomes 200 when the ack arrives and
    ``ack_payload`` is its ``payload``; over HTTP ``status`` and ``body`` are the
    app's answer (``ack_payload`` is that body as JSON, or ``{"text": body}``).
    Note that bolt sends no ack at all in Socket Mode when it answers anything
    but 200 (no listener matched: 404), so such a delivery never gets one.
    """

    fake: FakeSlack = field(repr=False)
    kind: Literal["events_api", "slash_commands", "interactive"]
    payload: JSON = field(repr=False)
    retry_num: int = 0
    retry_reason: str | None = None
    envelope_id: str | None = None
    sent_at: float | None = None
    acked_at: float | None = None
    status: int | None = None
    body: str = ""
    ack_payload: JSON | None = None
    request_headers: dict[str, str] = field(default_factory=dict, repr=False)
    response_headers: dict[str, str] = field(default_factory=dict, repr=False)
    error: str | None = None
    """A transport failure: the app's URL refused the connection, for instance."""
    extra_acks: int = 0
    """Socket Mode acks received for this envelope after the first one."""
    companions: list[Delivery] = field(default_factory=list, repr=False)
    """The other deliveries Slack makes for the same user action (the ``message``
    event next to an ``app_mention``, a ``file_shared`` per file)."""

    @property
    def event(self) -> JSON:
        """The inner event of an Events API delivery (``{}`` for the others)."""
        event: JSON = self.payload.get("event") or {}
        return event

    @property
    def event_id(self) -> str | None:
        """The Events API ``event_id``."""
        value = self.payload.get("event_id")
        return None if value is None else str(value)

    @property
    def ts(self) -> str | None:
        """The ``ts`` of the message behind this delivery, when there is one."""
        value = self.event.get("ts") or (self.payload.get("container") or {}).get("message_ts")
        return None if value is None else str(value)

    @property
    def response_url(self) -> str | None:
        """The ``response_url`` the payload carries."""
        value = self.payload.get("response_url")
        return None if value is None else str(value)

    @property
    def acked(self) -> bool:
        """Whether the app answered 200 (Socket Mode: sent the ack)."""
        return self.status == 200

    @property
    def answered(self) -> bool:
        """Whether the app answered (any status), or the transport failed."""
        return self.acked_at is not None or self.error is not None

    @property
    def no_retry(self) -> bool:
        """Whether the app answered with ``X-Slack-No-Retry: 1``, asking Slack not to
        retry (HTTP only; bolt never sets it by itself)."""
        return any(
            key.lower() == "x-slack-no-retry" and value == "1"
            for key, value in self.response_headers.items()
        )

    @property
    def ack_seconds(self) -> float | None:
        """Seconds between sending the request and the app's answer."""
        if self.sent_at is None or self.acked_at is None:
            return None
        return self.acked_at - self.sent_at

    async def wait_ack(self, timeout: float = 10.0) -> Delivery:
        """Wait until the app answered (see :attr:`answered`); returns this delivery."""
        await self.fake.wait_for(
            lambda: self.answered,
            timeout,
            what=f"the app's answer to {self.kind} {self.payload_id}",
        )
        return self

    @property
    def payload_id(self) -> str:
        """What identifies the delivery in messages: envelope id or event id."""
        return self.envelope_id or self.event_id or str(id(self))

    @property
    def responses(self) -> list[ResponsePost]:
        """The posts to this delivery's ``response_url``, oldest first."""
        return [post for post in self.fake.responses if post.delivery is self]

    async def response(self, index: int = 0, timeout: float = 10.0) -> ResponsePost:
        """Wait for post number ``index`` to this delivery's ``response_url``."""
        posts: list[ResponsePost] = await self.fake.wait_for(
            lambda: self.responses if len(self.responses) > index else None,
            timeout,
            what=f"response_url post {index} for {self.payload_id}",
        )
        return posts[index]


@dataclass
class _User:
    id: str
    name: str
    real_name: str
    display_name: str
    admin: bool = False
    owner: bool = False
    bot: bool = False
    bot_id: str | None = None
    deleted: bool = False


@dataclass
class _Channel:
    id: str
    name: str
    kind: Literal["channel", "group", "im"]
    members: set[str]
    created: int
    topic: str = ""
    purpose: str = ""
    user: str | None = None


@dataclass
class _File:
    id: str
    name: str
    title: str
    data: bytes
    mimetype: str
    filetype: str
    user: str
    created: int
    serve_html: bool = False
    stub: bool = False
    channels: list[str] = field(default_factory=list)


@dataclass
class _Stored:
    channel: str
    payload: JSON
    versions: list[JSON]
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _FailRule:
    method: str
    status: int
    retry_after: int | None
    error: str | None
    times: int


@dataclass
class _Trigger:
    issued_at: float
    user: str


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    ticket: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    retiring: bool = False
    hello_sent: bool = False


def _optional_flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _flag(args: Mapping[str, Any], key: str) -> bool:
    return bool(_optional_flag(args.get(key)))


def _json_arg(args: Mapping[str, Any], key: str) -> Any:
    """A structured argument: form-encoded calls carry it as a JSON string."""
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{key}") from None
    return value


def _json_response(
    body: JSON, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=dict(headers or {}))


def _rich_text(text: str) -> list[JSON]:
    """The ``rich_text`` block the Slack client attaches to what a user types."""
    elements: list[JSON] = []
    position = 0
    for match in re.finditer(r"<@([UW][A-Z0-9]+)>", text):
        if match.start() > position:
            elements.append({"type": "text", "text": text[position : match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        position = match.end()
    if position < len(text):
        elements.append({"type": "text", "text": text[position:]})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": secrets.token_hex(3), "elements": [section]}]


class FakeSlack:
    """A fake Slack workspace on 127.0.0.1; use as ``async with FakeSlack() as fake``.

    ``mode`` picks how user actions reach the app: ``"socket"`` (Socket Mode, the
    app connects with :attr:`app_token`) or ``"http"`` (signed POSTs to
    :attr:`events_url`, which the test sets). ``echo_bot_messages`` makes the bot's
    own posts come back as ``message`` events, as they do on Slack when the app
    subscribes to ``message.channels`` (bolt drops them). A ``trigger_id`` is good
    for ``trigger_ttl`` seconds (Slack: 3).

    Stop the app before leaving the ``async with``: a Socket Mode client whose
    connection the fake closes reconnects, and retries forever once it is gone.
    """

    def __init__(
        self,
        *,
        mode: Mode = "socket",
        team_name: str = "Library",
        team_domain: str = "library",
        bot_name: str = "archivist",
        echo_bot_messages: bool = False,
        trigger_ttl: float = 3.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if mode not in ("socket", "http"):
            raise ValueError(f"mode must be 'socket' or 'http', not {mode!r}")
        self.mode: Mode = mode
        self.echo_bot_messages = echo_bot_messages
        self.trigger_ttl = trigger_ttl
        self.connect_timeout = connect_timeout
        """How long a Socket Mode delivery waits for the app to be connected."""
        self._ids = 0
        self._last_ts_us = 0

        self.team_id = self._new_id("T")
        self.team_name = team_name
        self.team_domain = team_domain
        self.app_id = self._new_id("A")
        self.bot_id = self._new_id("B")
        self.bot_user_id = self._new_id("U")
        self.bot_token = (
            f"xoxb-{secrets.randbelow(10**12)}-{secrets.randbelow(10**12)}-{secrets.token_hex(12)}"
        )
        self.app_token = f"xapp-1-{self.app_id}-{secrets.randbelow(10**12)}-{secrets.token_hex(32)}"
        self.signing_secret = secrets.token_hex(16)
        self.verification_token = secrets.token_urlsafe(18)
        self.base_url = ""
        self.api_base = ""
        """``http://127.0.0.1:PORT/api/`` for ``AsyncWebClient(token, base_url=...)``."""
        self.events_url: str | None = None
        """Where HTTP mode posts events (and commands and interactions, unless set below)."""
        self.commands_url: str | None = None
        self.interactivity_url: str | None = None

        self.users: dict[str, _User] = {}
        self.channels: dict[str, _Channel] = {}
        self.files: dict[str, _File] = {}
        self.commands: dict[str, JSON] = {}
        """Registered slash commands by name (``"/ask"``)."""
        self.views: list[JSON] = []
        """Every view opened with ``views.open``, as answered."""

        self.calls: list[ApiCall] = []
        """Every Web API call, in order."""
        self.unknown_methods: list[str] = []
        """Methods (or paths) the fake does not implement that were called."""
        self.errors: list[str] = []
        """Tracebacks of exceptions raised inside the fake."""
        self.downloads: list[FileDownload] = []
        """Every request to the file server."""
        self.responses: list[ResponsePost] = []
        """Every post to a ``response_url``."""
        self.deliveries: list[Delivery] = []
        """Everything delivered to the app, in order."""
        self.socket_frames: list[JSON] = []
        """Every frame the app sent on Socket Mode connections (acks)."""
        self.unexpected_acks: list[JSON] = []
        """Socket Mode frames naming no envelope the fake sent."""
        self.socket_connections = 0
        """How many Socket Mode connections were opened (a reconnect adds one)."""

        self.bot_user = _User(
            self.bot_user_id,
            bot_name,
            bot_name.capitalize(),
            bot_name,
            bot=True,
            bot_id=self.bot_id,
        )
        self.users[self.bot_user_id] = self.bot_user

        self._messages: dict[str, _Stored] = {}
        self._channel_messages: dict[str, list[str]] = {}
        self._ephemeral: list[JSON] = []
        self._fail_rules: list[_FailRule] = []
        self._response_urls: dict[str, Delivery | None] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._tickets: set[str] = set()
        self._envelopes: dict[str, Delivery] = {}
        self._sockets: list[_Socket] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed_condition = asyncio.Condition()
        self._verifier = SignatureVerifier(self.signing_secret)
        self._session: aiohttp.ClientSession | None = None
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "files.info": self._files_info,
            "views.open": self._views_open,
        }

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._link)
        app.router.add_get("/link/", self._link)
        app.router.add_get("/files/{file_id}/{tail:.*}", self._file)
        app.router.add_post("/response/{response_id}", self._response_url)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)

    # --- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.base_url}/api/"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.ws.close(code=1001, message=b"fake Slack is shutting down")
        if self._session is not None:
            await self._session.close()
        await self._runner.cleanup()

    # --- building the world ---------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        number, digits = self._ids, ""
        while number:
            number, rest = divmod(number, 36)
            digits = _ID_ALPHABET[rest] + digits
        return prefix + "0FAKE" + digits.rjust(5, "0")

    def _new_ts(self) -> str:
        # Slack's ts is unique per channel and increases; here it is unique
        # across the workspace, so readers can find a message by ts alone.
        now = int(time.time() * 1_000_000)
        self._last_ts_us = max(now, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        owner: bool = False,
        bot: bool = False,
        real_name: str | None = None,
        display_name: str | None = None,
    ) -> str:
        """A workspace member (a bot user when ``bot``, with its own bot id); returns its id."""
        user = _User(
            self._new_id("U"),
            name,
            real_name if real_name is not None else name.capitalize(),
            display_name if display_name is not None else name,
            admin=admin or owner,
            owner=owner,
            bot=bot,
            bot_id=self._new_id("B") if bot else None,
        )
        self.users[user.id] = user
        return user.id

    def add_channel(
        self,
        name: str,
        *,
        private: bool = False,
        bot_member: bool = True,
        members: Iterable[str] = (),
        topic: str = "",
    ) -> str:
        """A channel (private when ``private``); the bot is a member unless told
        otherwise, and then ``chat.postMessage`` there fails with ``not_in_channel``."""
        members_set = set(members) | ({self.bot_user_id} if bot_member else set())
        channel = _Channel(
            self._new_id("C"),
            name,
            "group" if private else "channel",
            members_set,
            int(time.time()),
            topic=topic,
        )
        self.channels[channel.id] = channel
        self._channel_messages[channel.id] = []
        return channel.id

    def add_dm(self, user: str) -> str:
        """The direct message conversation between ``user`` and the bot; returns its id."""
        for channel in self.channels.values():
            if channel.kind == "im" and channel.user == user:
                return channel.id
        channel = _Channel(
            self._new_id("D"),
            user,
            "im",
            {user, self.bot_user_id},
            int(time.time()),
            user=user,
        )
        self.channels[channel.id] = channel
        self._channel_messages[channel.id] = []
        return channel.id

    def add_file(
        self,
        data: bytes,
        name: str,
        *,
        mimetype: str = "application/pdf",
        filetype: str = "pdf",
        user: str | None = None,
        title: str | None = None,
        serve_html: bool = False,
        stub: bool = False,
    ) -> JSON:
        """Put ``data`` on the file server; returns the file object pointing at it.

        ``serve_html`` makes the server answer Slack's HTML sign-in page even to the
        bot token, as Slack does to a token it does not take (one lacking
        ``files:read``, for instance). ``stub`` shares it as Slack Connect (and other
        shares the event cannot show in full) do: messages and events carry only
        ``{"id", "mode": "file_access", "file_access": "check_file_info"}`` and the
        rest comes from ``files.info``.
        """
        file = _File(
            self._new_id("F"),
            name,
            title if title is not None else name,
            data,
            mimetype,
            filetype,
            user or self.bot_user_id,
            int(time.time()),
            serve_html=serve_html,
            stub=stub,
        )
        self.files[file.id] = file
        return self._file_payload(file)

    def add_command(self, name: str, *, description: str = "", usage_hint: str = "") -> str:
        """Register the slash command ``name`` (with or without its ``/``); returns ``/name``."""
        command = "/" + name.lstrip("/")
        self.commands[command] = {
            "command": command,
            "description": description,
            "usage_hint": usage_hint,
        }
        return command

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | None = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail.

        Without ``error`` it is a 429 ``{"ok": false, "error": "ratelimited"}``
        with ``Retry-After: retry_after`` (slack_sdk's
        ``AsyncRateLimitErrorRetryHandler`` sleeps that many seconds plus up to
        one more, so tests use 0). With ``error`` it is ``{"ok": false, "error":
        error}`` with status 200, as Slack answers errors. ``status`` overrides
        either. ``method`` may also be ``"files.download"`` (the file server),
        ``"response_url"`` or ``"*"``.
        """
        if status is None:
            status = 429 if error is None else 200
        self._fail_rules.append(_FailRule(method, status, retry_after, error, times))

    # --- reading the state ----------------------------------------------------------

    def message(self, ts: str) -> JSON:
        """A message as it is now (deleted ones too), found by its ts."""
        return self._public(self._messages[ts])

    def is_deleted(self, ts: str) -> bool:
        """Whether the message was deleted."""
        return self._messages[ts].deleted

    def messages(self, channel: str, thread_ts: str | None = None) -> list[JSON]:
        """The channel's messages, oldest first: all of them (thread replies too),
        or only the thread ``thread_ts`` (its parent first)."""
        found = []
        for ts in self._channel_messages.get(channel, []):
            stored = self._messages[ts]
            if stored.deleted:
                continue
            if thread_ts is not None and thread_ts not in (ts, stored.payload.get("thread_ts")):
                continue
            found.append(self._public(stored))
        return found

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[JSON]:
        """The channel's messages posted by the bot (see :meth:`messages`)."""
        return [m for m in self.messages(channel, thread_ts) if m.get("user") == self.bot_user_id]

    def updates(self, ts: str) -> list[JSON]:
        """The message as it was after each ``chat.update`` (or ``replace_original``)."""
        return copy.deepcopy(self._messages[ts].versions[1:])

    def reactions(self, ts: str) -> dict[str, list[str]]:
        """Reaction name → ids of the users who added it."""
        return copy.deepcopy(self._messages[ts].reactions)

    def ephemeral(self, user: str) -> list[JSON]:
        """Ephemeral messages shown to ``user`` (``chat.postEphemeral``, ephemeral
        ``response_url`` posts and slash command ack bodies), oldest first."""
        return [copy.deepcopy(m) for m in self._ephemeral if m["for_user"] == user]

    def calls_to(self, method: str) -> list[ApiCall]:
        """The recorded calls to one Web API method."""
        return [call for call in self.calls if call.method == method]

    @property
    def live_sockets(self) -> int:
        """Open Socket Mode connections that got their ``hello``."""
        return sum(1 for s in self._sockets if s.hello_sent and not s.ws.closed)

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, *, what: str = ""
    ) -> Any:
        """Wait until ``predicate()`` is truthy and return its value.

        It is checked now and again every time the fake records something: a Web
        API call, an ack or an HTTP answer from the app, a download, a
        ``response_url`` post, a Socket Mode connection opening or closing. So it
        should look at the fake's state; for the app's own state use its signals.
        """
        async with self._changed_condition:
            try:
                return await asyncio.wait_for(self._changed_condition.wait_for(predicate), timeout)
            except asyncio.TimeoutError:
                last = [
                    (c.method, c.status, (c.response or {}).get("error")) for c in self.calls[-5:]
                ]
                raise TimeoutError(
                    f"waited {timeout} s for {what or 'a condition'}; live sockets:"
                    f" {self.live_sockets}; last calls: {last}; unknown methods:"
                    f" {self.unknown_methods}; errors: {self.errors}"
                ) from None

    async def _changed(self) -> None:
        async with self._changed_condition:
            self._changed_condition.notify_all()

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        async def guarded() -> None:
            try:
                await coroutine
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors.append(traceback.format_exc())
                await self._changed()

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- acting as users ------------------------------------------------------------

    async def mention(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: Sequence[JSON | str] = (),
        event_id: str | None = None,
        retry: int = 0,
        with_message: bool = True,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
    ) -> Delivery:
        """``user`` posts ``text`` mentioning the bot (``<@BOT>`` is prepended when
        missing): an ``app_mention`` event, and, unless ``with_message`` is false,
        the ``message`` event Slack sends next to it (in ``companions``).

        ``event_id`` forces the app_mention's id, ``retry`` marks it as Slack's
        retry number ``retry``. ``bad_signature`` and ``stale_timestamp`` (HTTP
        mode) sign the requests wrongly or 10 minutes in the past.
        """
        mention = f"<@{self.bot_user_id}>"
        if mention not in text:
            text = f"{mention} {text}"
        return await self._user_message(
            channel,
            user,
            text,
            thread_ts=thread_ts,
            files=files,
            event_id=event_id,
            retry=retry,
            primary="app_mention",
            with_message=with_message,
            bad_signature=bad_signature,
            stale_timestamp=stale_timestamp,
        )

    async def post_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        files: Sequence[JSON | str] = (),
        thread_ts: str | None = None,
        event_id: str | None = None,
        retry: int = 0,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
    ) -> Delivery:
        """``user`` posts a message: a ``message`` event. With ``files`` (file
        objects from :meth:`add_file`, or their ids) it has subtype ``file_share``
        and a ``files`` array, and a ``file_shared`` event follows for each file.
        If ``text`` mentions the bot an ``app_mention`` follows too, as on Slack.
        """
        return await self._user_message(
            channel,
            user,
            text,
            thread_ts=thread_ts,
            files=files,
            event_id=event_id,
            retry=retry,
            primary="message",
            with_message=True,
            bad_signature=bad_signature,
            stale_timestamp=stale_timestamp,
        )

    async def send_event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
    ) -> Delivery:
        """Deliver any Events API ``event`` (``reaction_added``, ``member_joined_channel``…)
        wrapped in an ``event_callback`` envelope."""
        return await self._deliver(
            "events_api",
            self._event_callback(event, event_id),
            retry_num=retry_num,
            retry_reason=retry_reason,
            bad_signature=bad_signature,
            stale_timestamp=stale_timestamp,
        )

    async def command(
        self,
        name: str,
        text: str = "",
        *,
        user: str,
        channel: str,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
    ) -> Delivery:
        """``user`` runs the registered slash command ``name`` in ``channel``.

        The payload carries a ``response_url`` served by the fake and a
        ``trigger_id`` for ``views.open``. An ack body with text becomes what
        Slack shows: an ephemeral message, or a channel message for
        ``response_type: in_channel``.
        """
        command = "/" + name.lstrip("/")
        if command not in self.commands:
            raise ValueError(f"{command} is not registered: call add_command({command!r}) first")
        the_user, the_channel = self.users[user], self.channels[channel]
        response_url = self._new_response_url()
        payload = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": "directmessage" if the_channel.kind == "im" else the_channel.name,
            "user_id": user,
            "user_name": the_user.name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": self._new_trigger(user),
        }
        return await self._deliver(
            "slash_commands",
            payload,
            response_url=response_url,
            bad_signature=bad_signature,
            stale_timestamp=stale_timestamp,
        )

    async def block_action(
        self,
        user: str,
        channel: str,
        *,
        action_id: str,
        value: str | None = None,
        selected_option: str | JSON | None = None,
        message_ts: str | None = None,
        block_id: str | None = None,
        response_url: bool = True,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
    ) -> Delivery:
        """``user`` clicks a button (``value``) or picks an option of a select menu
        (``selected_option``: its value, or an option object) in the message
        ``message_ts``: a ``block_actions`` interactive payload.

        When the message has the element, its ``type`` and ``block_id`` are taken
        from it, and an option given by value is looked up in its options.
        """
        the_user = self.users[user]
        element, found_block_id = self._find_element(message_ts, action_id)
        action: JSON = {
            "action_id": action_id,
            "block_id": block_id or found_block_id or secrets.token_hex(3),
            "action_ts": f"{time.time():.6f}",
        }
        if selected_option is not None:
            action["type"] = (element or {}).get("type", "static_select")
            action["selected_option"] = self._option(element, selected_option)
            if element and "placeholder" in element:
                action["placeholder"] = element["placeholder"]
        else:
            action["type"] = (element or {}).get("type", "button")
            if value is not None:
                action["value"] = value
            if element and "text" in element:
                action["text"] = element["text"]
        payload: JSON = {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": the_user.name,
                "name": the_user.name,
                "team_id": self.team_id,
            },
            "api_app_id": self.app_id,
            "token": self.verification_token,
            "trigger_id": self._new_trigger(user),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channels[channel].name},
            "state": {"values": {}},
            "actions": [action],
        }
        if message_ts is not None:
            stored = self._messages[message_ts]
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
            payload["message"] = self._public(stored)
        url = None
        if response_url:
            url = self._new_response_url()
            payload["response_url"] = url
        return await self._deliver(
            "interactive",
            payload,
            response_url=url,
            bad_signature=bad_signature,
            stale_timestamp=stale_timestamp,
        )

    async def redeliver(
        self,
        delivery: Delivery,
        retry_num: int = 1,
        *,
        reason: str = "http_timeout",
        new_event_id: bool = False,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
    ) -> Delivery:
        """Deliver an event again: Slack's retry number ``retry_num`` (headers
        ``X-Slack-Retry-Num``/``-Reason`` over HTTP, ``retry_attempt``/
        ``retry_reason`` in Socket Mode), or, with ``new_event_id``, the same
        event under a new event id (Slack's duplicate without retry markers
        unless ``retry_num`` > 0)."""
        if delivery.kind != "events_api":
            raise ValueError("Slack retries only Events API deliveries")
        payload = copy.deepcopy(delivery.payload)
        if new_event_id:
            payload["event_id"] = self._new_id("Ev")
            payload["event_time"] = int(time.time())
        return await self._deliver(
            "events_api",
            payload,
            retry_num=retry_num,
            retry_reason=reason if retry_num > 0 else None,
            bad_signature=bad_signature,
            stale_timestamp=stale_timestamp,
        )

    async def disconnect_socket(
        self, reason: str = "refresh_requested", *, wait: bool = True, timeout: float = 10.0
    ) -> None:
        """Send ``{"type": "disconnect", "reason": ...}`` on every live connection,
        as Slack does before it recycles one; with ``wait``, return once the app
        has opened a new connection, then close the old ones."""
        old = [s for s in self._sockets if not s.ws.closed and not s.retiring]
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        for socket in old:
            socket.retiring = True
            async with socket.lock:
                await socket.ws.send_str(json.dumps(frame))
        if not wait:
            return
        await self.wait_for(
            lambda: self._live_socket() is not None, timeout, what="a new Socket Mode connection"
        )
        for socket in old:
            with contextlib.suppress(Exception):
                await socket.ws.close(code=1000, message=b"disconnected")

    # --- building payloads ----------------------------------------------------------

    async def _user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None,
        files: Sequence[JSON | str],
        event_id: str | None,
        retry: int,
        primary: Literal["app_mention", "message"],
        with_message: bool,
        bad_signature: bool,
        stale_timestamp: bool,
    ) -> Delivery:
        the_channel = self.channels[channel]
        the_user = self.users[user]
        if thread_ts is not None and thread_ts not in self._messages:
            raise ValueError(f"no message {thread_ts} to reply to")
        shared = [self.files[f if isinstance(f, str) else f["id"]] for f in files]
        ts = self._new_ts()
        payload: JSON = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "team": self.team_id,
            "client_msg_id": str(uuid.uuid4()),
            "blocks": _rich_text(text),
        }
        if the_user.bot_id is not None:
            payload["bot_id"] = the_user.bot_id
        if shared:
            payload["subtype"] = "file_share"
            payload["upload"] = False
            payload["display_as_bot"] = False
            for file in shared:
                if channel not in file.channels:
                    file.channels.append(channel)
            payload["files"] = [self._shared_file(file) for file in shared]
        if thread_ts is not None:
            parent = self._messages[thread_ts].payload
            payload["thread_ts"] = parent.get("thread_ts") or thread_ts
            payload["parent_user_id"] = self._messages[payload["thread_ts"]].payload.get("user")
        self._store(channel, payload)

        message_event = {
            **copy.deepcopy(payload),
            "channel": channel,
            "event_ts": ts,
            "channel_type": the_channel.kind,
        }
        mention_event: JSON = {
            key: copy.deepcopy(value)
            for key, value in message_event.items()
            if key not in ("channel_type", "subtype", "upload", "display_as_bot")
        }
        mention_event["type"] = "app_mention"
        companions: list[JSON] = []
        if primary == "app_mention" and with_message:
            companions.append(message_event)
        elif primary == "message" and f"<@{self.bot_user_id}>" in text:
            companions.append(mention_event)
        for file in shared:
            companions.append(
                {
                    "type": "file_shared",
                    "channel_id": channel,
                    "file_id": file.id,
                    "user_id": user,
                    "file": {"id": file.id},
                    "event_ts": ts,
                }
            )
        first = await self._deliver(
            "events_api",
            self._event_callback(
                mention_event if primary == "app_mention" else message_event, event_id
            ),
            retry_num=retry,
            retry_reason="http_timeout" if retry > 0 else None,
            bad_signature=bad_signature,
            stale_timestamp=stale_timestamp,
        )
        for event in companions:
            delivery = await self._deliver(
                "events_api",
                self._event_callback(event),
                bad_signature=bad_signature,
                stale_timestamp=stale_timestamp,
            )
            first.companions.append(delivery)
        return first

    def _event_callback(self, event: JSON, event_id: str | None = None) -> JSON:
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or self._new_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }

    def _new_response_url(self) -> str:
        response_id = secrets.token_urlsafe(18)
        self._response_urls[response_id] = None
        return f"{self.base_url}/response/{response_id}"

    def _new_trigger(self, user: str) -> str:
        trigger = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = _Trigger(asyncio.get_running_loop().time(), user)
        return trigger

    def _find_element(
        self, message_ts: str | None, action_id: str
    ) -> tuple[JSON | None, str | None]:
        if message_ts is None:
            return None, None
        for block in self._messages[message_ts].payload.get("blocks") or []:
            candidates = list(block.get("elements") or [])
            if isinstance(block.get("accessory"), dict):
                candidates.append(block["accessory"])
            for element in candidates:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return element, block.get("block_id")
        return None, None

    @staticmethod
    def _option(element: JSON | None, selected: str | JSON) -> JSON:
        if isinstance(selected, dict):
            return copy.deepcopy(selected)
        options = list((element or {}).get("options") or [])
        for group in (element or {}).get("option_groups") or []:
            options.extend(group.get("options") or [])
        for option in options:
            if option.get("value") == selected:
                return copy.deepcopy(dict(option))
        return {"text": {"type": "plain_text", "text": selected, "emoji": True}, "value": selected}

    def _shared_file(self, file: _File) -> JSON:
        """A file as a message shows it: whole, or a stub that says to ask ``files.info``."""
        if not file.stub:
            return self._file_payload(file)
        return {
            "id": file.id,
            "mode": "file_access",
            "file_access": "check_file_info",
            "created": file.created,
            "timestamp": file.created,
            "user": file.user,
        }

    def _file_payload(self, file: _File) -> JSON:
        slug = re.sub(r"[^a-z0-9]+", "_", file.name.lower()).strip("_")
        name = quote(file.name)
        return {
            "id": file.id,
            "created": file.created,
            "timestamp": file.created,
            "name": file.name,
            "title": file.title,
            "mimetype": file.mimetype,
            "filetype": file.filetype,
            "pretty_type": file.filetype.upper(),
            "user": file.user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(file.data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{self.base_url}/files/{file.id}/{name}",
            "url_private_download": f"{self.base_url}/files/{file.id}/download/{name}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{file.user}/{file.id}/{slug}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{file.id}-{secrets.token_hex(5)}",
            "channels": [c for c in file.channels if self.channels[c].kind == "channel"],
            "groups": [c for c in file.channels if self.channels[c].kind == "group"],
            "ims": [c for c in file.channels if self.channels[c].kind == "im"],
            "has_rich_preview": False,
            "file_access": "visible",
        }

    # --- delivering to the app ------------------------------------------------------

    async def _deliver(
        self,
        kind: Literal["events_api", "slash_commands", "interactive"],
        payload: JSON,
        *,
        retry_num: int = 0,
        retry_reason: str | None = None,
        response_url: str | None = None,
        bad_signature: bool = False,
        stale_timestamp: bool = False,
    ) -> Delivery:
        url = None
        if self.mode == "socket" and (bad_signature or stale_timestamp):
            raise ValueError("Socket Mode requests are not signed: use mode='http'")
        if self.mode == "http":
            url = {
                "events_api": self.events_url,
                "slash_commands": self.commands_url or self.events_url,
                "interactive": self.interactivity_url or self.events_url,
            }[kind]
            if url is None:
                raise RuntimeError("set fake.events_url to the app's URL before delivering")
        delivery = Delivery(self, kind, payload, retry_num, retry_reason)
        if response_url is not None:
            self._response_urls[response_url.rsplit("/", 1)[1]] = delivery
        self.deliveries.append(delivery)
        if url is None:
            await self._send_envelope(delivery)
        else:
            self._spawn(self._post_to_app(delivery, url, bad_signature, stale_timestamp))
        await self._changed()
        return delivery

    def _live_socket(self) -> _Socket | None:
        live = [s for s in self._sockets if s.hello_sent and not s.retiring and not s.ws.closed]
        return live[-1] if live else None

    async def _send_envelope(self, delivery: Delivery) -> None:
        socket: _Socket = await self.wait_for(
            self._live_socket, self.connect_timeout, what="the app's Socket Mode connection"
        )
        envelope_id = str(uuid.uuid4())
        delivery.envelope_id = envelope_id
        envelope: JSON = {
            "envelope_id": envelope_id,
            "payload": delivery.payload,
            "type": delivery.kind,
            "accepts_response_payload": delivery.kind == "slash_commands"
            or delivery.payload.get("type") in ("view_submission", "block_suggestion"),
        }
        if delivery.kind == "events_api":
            # Slack puts both on every events_api envelope, 0 and "" on a first try.
            envelope["retry_attempt"] = delivery.retry_num
            envelope["retry_reason"] = delivery.retry_reason or ""
        self._envelopes[envelope_id] = delivery
        async with socket.lock:
            delivery.sent_at = asyncio.get_running_loop().time()
            await socket.ws.send_str(json.dumps(envelope))

    async def _post_to_app(
        self, delivery: Delivery, url: str, bad_signature: bool, stale_timestamp: bool
    ) -> None:
        assert self._session is not None
        if delivery.kind == "events_api":
            body = json.dumps(delivery.payload).encode()
            content_type = "application/json"
        elif delivery.kind == "slash_commands":
            body = urlencode(delivery.payload).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body = urlencode({"payload": json.dumps(delivery.payload)}).encode()
            content_type = "application/x-www-form-urlencoded"
        timestamp = str(int(time.time()) - (_STALE_SECONDS if stale_timestamp else 0))
        signature = self._verifier.generate_signature(timestamp=timestamp, body=body) or ""
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": _BAD_SIGNATURE if bad_signature else signature,
        }
        if delivery.retry_num > 0:
            headers["X-Slack-Retry-Num"] = str(delivery.retry_num)
            headers["X-Slack-Retry-Reason"] = delivery.retry_reason or "http_timeout"
        delivery.request_headers = headers
        loop = asyncio.get_running_loop()
        delivery.sent_at = loop.time()
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                text = await response.text()
                delivery.response_headers = dict(response.headers)
                delivery.body = text
                delivery.status = response.status
                delivery.acked_at = loop.time()
                if response.status == 200 and text:
                    try:
                        parsed = json.loads(text)
                    except ValueError:
                        parsed = {"text": text}
                    delivery.ack_payload = parsed if isinstance(parsed, dict) else {"text": text}
        except aiohttp.ClientError as error:
            delivery.error = repr(error)
        if delivery.acked:
            self._apply_ack(delivery)
        await self._changed()

    def _apply_ack(self, delivery: Delivery) -> None:
        """What Slack does with an ack body: a slash command's is shown to the user."""
        body = delivery.ack_payload
        if delivery.kind != "slash_commands" or not body:
            return
        if not (body.get("text") or body.get("blocks")):
            return
        channel, user = delivery.payload["channel_id"], delivery.payload["user_id"]
        if body.get("response_type") == "in_channel":
            self._store(channel, self._bot_payload(body))
        else:
            self._add_ephemeral(channel, user, body, "ack")

    # --- Socket Mode ----------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        socket = _Socket(ws, ticket)
        self._sockets.append(socket)
        self.socket_connections += 1
        try:
            hello = {
                "type": "hello",
                "num_connections": sum(1 for s in self._sockets if not s.ws.closed),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
            async with socket.lock:
                await ws.send_str(json.dumps(hello))
                socket.hello_sent = True
            await self._changed()
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                await self._on_frame(json.loads(frame.data))
        except Exception:
            self.errors.append(traceback.format_exc())
        finally:
            self._sockets.remove(socket)
            await self._changed()
        return ws

    async def _on_frame(self, data: JSON) -> None:
        self.socket_frames.append(data)
        delivery = self._envelopes.get(str(data.get("envelope_id")))
        if delivery is None:
            self.unexpected_acks.append(data)
        elif delivery.acked_at is not None:
            delivery.extra_acks += 1
        else:
            delivery.acked_at = asyncio.get_running_loop().time()
            delivery.status = 200
            payload = data.get("payload")
            delivery.ack_payload = payload if isinstance(payload, dict) else None
            self._apply_ack(delivery)
        await self._changed()

    # --- file server and response URLs ----------------------------------------------

    async def _file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        authorization = request.headers.get("Authorization")
        file = self.files.get(file_id)
        response: web.Response
        served: Literal["file", "login", "missing", "failed"]
        failure = self._failure("files.download")
        if failure is not None:
            response, served = failure, "failed"
        elif file is None:
            response = web.Response(status=404, text="Not Found")
            served = "missing"
        elif file.serve_html or authorization != f"Bearer {self.bot_token}":
            response = web.Response(text=_LOGIN_PAGE, content_type="text/html", charset="utf-8")
            served = "login"
        else:
            disposition = f"attachment; filename*=UTF-8''{quote(file.name)}"
            response = web.Response(
                body=file.data,
                content_type=file.mimetype,
                headers={"Content-Disposition": disposition},
            )
            served = "file"
        self.downloads.append(
            FileDownload(
                file_id,
                request.path,
                authorization,
                response.status,
                response.content_type,
                served,
            )
        )
        await self._changed()
        return response

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        response_id = request.match_info["response_id"]
        failure = self._failure("response_url")
        if failure is not None:
            return failure
        if response_id not in self._response_urls:
            return web.Response(status=404, text="no_service")
        delivery = self._response_urls[response_id]
        raw = await request.text()
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                form = await request.post()
                body = json.loads(str(form.get("payload") or "{}"))
            else:
                body = json.loads(raw) if raw else {}
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        post = ResponsePost(delivery, body, 200)
        try:
            self._apply_response(delivery, post)
        except SlackError as error:
            post.status = 404
            self.responses.append(post)
            await self._changed()
            return web.Response(status=404, text=error.error)
        self.responses.append(post)
        await self._changed()
        return web.Response(text="ok")

    def _apply_response(self, delivery: Delivery | None, post: ResponsePost) -> None:
        if delivery is None:
            return
        payload = delivery.payload
        channel = str(payload.get("channel_id") or (payload.get("channel") or {}).get("id"))
        user = str(payload.get("user_id") or (payload.get("user") or {}).get("id"))
        original = (payload.get("container") or {}).get("message_ts")
        if post.delete_original:
            stored = self._messages.get(original) if original else None
            if stored is None:
                raise SlackError("message_not_found")
            stored.deleted = True
        elif post.replace_original and original:
            stored = self._messages[original]
            self._edit(stored, post.body)
        elif post.response_type == "in_channel":
            self._store(channel, self._bot_payload(post.body))
        else:
            self._add_ephemeral(channel, user, post.body, "response_url")

    def _add_ephemeral(self, channel: str, user: str, body: JSON, source: str) -> str:
        ts = self._new_ts()
        message: JSON = {
            "type": "message",
            "subtype": "ephemeral",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": str(body.get("text") or ""),
            "ts": ts,
            "channel": channel,
            "for_user": user,
            "source": source,
        }
        for key in ("blocks", "attachments", "thread_ts"):
            if body.get(key):
                message[key] = copy.deepcopy(body[key])
        self._ephemeral.append(message)
        return ts

    # --- Web API --------------------------------------------------------------------

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        self.unknown_methods.append(f"{request.method} {request.path}")
        await self._changed()
        return web.Response(status=404, text="Not Found")

    async def _read_args(self, request: web.Request) -> JSON:
        args: JSON = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return args
        if request.content_type == "application/json":
            raw = await request.read()
            if raw:
                body = json.loads(raw)
                if isinstance(body, dict):
                    args.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                args[key] = value if isinstance(value, str) else getattr(value, "filename", "")
        return args

    def _failure(self, method: str) -> web.Response | None:
        for rule in self._fail_rules:
            if rule.method not in ("*", method):
                continue
            rule.times -= 1
            if rule.times <= 0:
                self._fail_rules.remove(rule)
            headers = {}
            if rule.status == 429 and rule.retry_after is not None:
                headers["Retry-After"] = str(rule.retry_after)
            default = "ratelimited" if rule.status == 429 else "internal_error"
            return _json_response(
                {"ok": False, "error": rule.error or default}, rule.status, headers
            )
        return None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        headers = dict(request.headers)
        try:
            args = await self._read_args(request)
        except ValueError:
            args = {}
        call = ApiCall(method, copy.deepcopy(args), headers)
        response = self._failure(method)
        if response is None:
            try:
                body = await self._answer(method, args, request)
            except SlackError as error:
                body = error.body()
            except Exception:
                self.errors.append(traceback.format_exc())
                body = {"ok": False, "error": "internal_error"}
                response = _json_response(body, 500)
            if response is None:
                response = _json_response(body, headers={"X-Slack-Req-Id": secrets.token_hex(16)})
        call.status = response.status
        assert isinstance(response.body, bytes)
        call.response = json.loads(response.body)
        self.calls.append(call)
        await self._changed()
        return response

    async def _answer(self, method: str, args: JSON, request: web.Request) -> JSON:
        handler = self._handlers.get(method)
        if handler is None:
            self.unknown_methods.append(method)
            raise SlackError("unknown_method", req_method=method)
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ").strip() or str(args.pop("token", "") or "")
        args.pop("token", None)
        if not token:
            raise SlackError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise SlackError("invalid_auth")
        wants_app_token = method in _APP_TOKEN_METHODS
        if (token == self.app_token) != wants_app_token:
            raise SlackError("not_allowed_token_type")
        return {"ok": True, **(await handler(args))}

    # argument helpers

    @staticmethod
    def _required(args: JSON, key: str) -> str:
        value = args.get(key)
        if value is None or value == "":
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] missing required field: {key}"]},
            )
        return str(value)

    def _channel_arg(self, args: JSON, key: str = "channel") -> _Channel:
        wanted = self._required(args, key)
        channel = self.channels.get(wanted)
        if channel is None:
            name = wanted.lstrip("#")
            channel = next(
                (c for c in self.channels.values() if c.name == name and c.kind != "im"), None
            )
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _message_arg(self, channel: _Channel, ts: str) -> _Stored:
        stored = self._messages.get(ts)
        if stored is None or stored.deleted or stored.channel != channel.id:
            raise SlackError("message_not_found")
        return stored

    def _content(self, args: JSON) -> JSON:
        """The text, blocks and attachments of a message, checked as Slack checks them."""
        text = args.get("text")
        blocks = _json_arg(args, "blocks")
        attachments = _json_arg(args, "attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        if text is not None and len(str(text)) > _MAX_TEXT:
            raise SlackError("msg_too_long")
        content: JSON = {"text": str(text or "")}
        if blocks:
            self._check_blocks(blocks)
            content["blocks"] = blocks
        if attachments:
            content["attachments"] = attachments
        return content

    @staticmethod
    def _check_blocks(blocks: Any) -> None:
        if not isinstance(blocks, list) or len(blocks) > _MAX_BLOCKS:
            raise SlackError(
                "invalid_blocks",
                errors=[f"must provide at most {_MAX_BLOCKS} items [json-pointer:/blocks]"],
            )
        problems = []
        for index, block in enumerate(blocks):
            if not isinstance(block, dict) or not block.get("type"):
                problems.append(f"missing required field: type [json-pointer:/blocks/{index}]")
                continue
            text = block.get("text")
            text = text.get("text") if isinstance(text, dict) else None
            limit = {"section": _MAX_SECTION_TEXT, "header": _MAX_HEADER_TEXT}.get(block["type"])
            if limit is not None and isinstance(text, str) and len(text) > limit:
                pointer = f"[json-pointer:/blocks/{index}/text/text]"
                problems.append(f"must be less than {limit + 1} characters {pointer}")
        if problems:
            raise SlackError("invalid_blocks", errors=problems)

    def _bot_payload(self, content: JSON) -> JSON:
        payload: JSON = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": str(content.get("text") or ""),
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_user.name,
                "deleted": False,
                "team_id": self.team_id,
            },
        }
        for key in ("blocks", "attachments", "metadata"):
            if content.get(key):
                payload[key] = copy.deepcopy(content[key])
        thread_ts = content.get("thread_ts")
        if thread_ts:
            payload["thread_ts"] = str(thread_ts)
        return payload

    def _store(self, channel: str, payload: JSON) -> _Stored:
        payload.setdefault("ts", self._new_ts())
        thread_ts = payload.get("thread_ts")
        if thread_ts is not None:
            parent = self._messages.get(thread_ts)
            if parent is not None and parent.payload.get("thread_ts") not in (None, thread_ts):
                # A reply to a reply lands in the parent's thread.
                payload["thread_ts"] = parent.payload["thread_ts"]
        stored = _Stored(channel, payload, [copy.deepcopy(payload)])
        self._messages[payload["ts"]] = stored
        self._channel_messages.setdefault(channel, []).append(payload["ts"])
        return stored

    def _edit(self, stored: _Stored, content: JSON) -> None:
        payload = stored.payload
        payload["text"] = str(content.get("text") or "")
        for key in ("blocks", "attachments"):
            if content.get(key):
                payload[key] = copy.deepcopy(content[key])
            else:
                payload.pop(key, None)
        payload["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        stored.versions.append(copy.deepcopy(payload))

    def _public(self, stored: _Stored) -> JSON:
        """The message as the Web API shows it, with the thread fields of a parent."""
        payload = copy.deepcopy(stored.payload)
        ts = payload["ts"]
        replies = [
            self._messages[r].payload
            for r in self._channel_messages.get(stored.channel, [])
            if r != ts
            and self._messages[r].payload.get("thread_ts") == ts
            and not self._messages[r].deleted
        ]
        if replies:
            payload["thread_ts"] = ts
            payload["reply_count"] = len(replies)
            payload["reply_users"] = list(dict.fromkeys(r["user"] for r in replies))
            payload["reply_users_count"] = len(payload["reply_users"])
            payload["latest_reply"] = replies[-1]["ts"]
        if stored.reactions:
            payload["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in stored.reactions.items()
            ]
        return payload

    def _user_payload(self, user: _User) -> JSON:
        profile: JSON = {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "first_name": user.real_name.split(" ")[0],
            "team": self.team_id,
            "image_72": f"https://avatars.slack-edge.com/{user.id}_72.png",
        }
        if user.bot_id is not None:
            profile["bot_id"] = user.bot_id
            profile["api_app_id"] = self.app_id if user.id == self.bot_user_id else ""
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": user.admin,
            "is_owner": user.owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }

    def _channel_payload(self, channel: _Channel) -> JSON:
        data: JSON = {
            "id": channel.id,
            "created": channel.created,
            "is_archived": False,
            "is_im": channel.kind == "im",
            "is_org_shared": False,
            "context_team_id": self.team_id,
            "updated": channel.created * 1000,
        }
        if channel.kind == "im":
            data.update(user=channel.user, is_user_deleted=False, priority=0)
            return data
        data.update(
            name=channel.name,
            name_normalized=channel.name,
            is_channel=channel.kind == "channel",
            is_group=False,
            is_mpim=False,
            is_private=channel.kind == "group",
            is_general=False,
            is_shared=False,
            is_ext_shared=False,
            is_pending_ext_shared=False,
            is_member=self.bot_user_id in channel.members,
            creator=next(iter(sorted(channel.members)), ""),
            topic={"value": channel.topic, "creator": "", "last_set": 0},
            purpose={"value": channel.purpose, "creator": "", "last_set": 0},
            num_members=len(channel.members),
        )
        return data

    @staticmethod
    def _page(items: list[JSON], args: JSON) -> JSON:
        limit = int(args.get("limit") or 100)
        cursor = str(args.get("cursor") or "")
        start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
        page = items[start : start + limit]
        more = start + limit < len(items)
        next_cursor = base64.b64encode(f"next_ts:{start + limit}".encode()).decode() if more else ""
        return {
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    # methods

    async def _auth_test(self, args: JSON) -> JSON:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_user.name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _apps_connections_open(self, args: JSON) -> JSON:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        host = self.base_url.removeprefix("http://")
        return {"url": f"ws://{host}/link/?ticket={ticket}&app_id={self.app_id}"}

    async def _chat_post_message(self, args: JSON) -> JSON:
        wanted = args.get("channel")
        if isinstance(wanted, str) and wanted in self.users:
            # A user id as channel: Slack posts in the bot's DM with that user.
            args = {**args, "channel": self.add_dm(wanted)}
        channel = self._channel_arg(args)
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        content = self._content(args)
        thread_ts = args.get("thread_ts")
        if thread_ts:
            content["thread_ts"] = str(thread_ts)
        metadata = _json_arg(args, "metadata")
        if metadata:
            content["metadata"] = metadata
        payload = self._bot_payload(content)
        stored = self._store(channel.id, payload)
        if self.echo_bot_messages:
            event = {
                **self._public(stored),
                "channel": channel.id,
                "event_ts": payload["ts"],
                "channel_type": channel.kind,
            }
            self._spawn(self._deliver("events_api", self._event_callback(event)))
        return {"channel": channel.id, "ts": payload["ts"], "message": self._public(stored)}

    async def _chat_update(self, args: JSON) -> JSON:
        channel = self._channel_arg(args)
        stored = self._message_arg(channel, self._required(args, "ts"))
        if stored.payload.get("user") != self.bot_user_id:
            raise SlackError("cant_update_message")
        self._edit(stored, self._content(args))
        return {
            "channel": channel.id,
            "ts": stored.payload["ts"],
            "text": stored.payload["text"],
            "message": self._public(stored),
        }

    async def _chat_delete(self, args: JSON) -> JSON:
        channel = self._channel_arg(args)
        stored = self._message_arg(channel, self._required(args, "ts"))
        if stored.payload.get("user") != self.bot_user_id:
            raise SlackError("cant_delete_message")
        stored.deleted = True
        return {"channel": channel.id, "ts": stored.payload["ts"]}

    async def _chat_post_ephemeral(self, args: JSON) -> JSON:
        channel = self._channel_arg(args)
        user = self._required(args, "user")
        if user not in self.users:
            raise SlackError("user_not_found")
        content = self._content(args)
        if args.get("thread_ts"):
            content["thread_ts"] = str(args["thread_ts"])
        return {"message_ts": self._add_ephemeral(channel.id, user, content, "chat.postEphemeral")}

    async def _chat_get_permalink(self, args: JSON) -> JSON:
        channel = self._channel_arg(args)
        stored = self._message_arg(channel, self._required(args, "message_ts"))
        ts = stored.payload["ts"]
        permalink = (
            f"https://{self.team_domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        )
        thread_ts = stored.payload.get("thread_ts")
        if thread_ts and thread_ts != ts:
            permalink += f"?thread_ts={thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": permalink}

    def _reaction_target(self, args: JSON) -> tuple[_Stored, str]:
        channel = self._channel_arg(args)
        stored = self._message_arg(channel, self._required(args, "timestamp"))
        name = self._required(args, "name")
        if ":" in name.strip(":") or not name.strip(":"):
            raise SlackError("invalid_name")
        return stored, name.strip(":")

    async def _reactions_add(self, args: JSON) -> JSON:
        stored, name = self._reaction_target(args)
        users = stored.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise SlackError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    async def _reactions_remove(self, args: JSON) -> JSON:
        stored, name = self._reaction_target(args)
        users = stored.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise SlackError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del stored.reactions[name]
        return {}

    async def _users_info(self, args: JSON) -> JSON:
        user = self.users.get(self._required(args, "user"))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": self._user_payload(user)}

    async def _conversations_open(self, args: JSON) -> JSON:
        wanted = [u for u in str(args.get("users") or "").split(",") if u]
        if len(wanted) != 1:
            raise SlackError("users_list_not_supplied" if not wanted else "not_implemented")
        if wanted[0] not in self.users:
            raise SlackError("user_not_found")
        return {"channel": {"id": self.add_dm(wanted[0])}}

    async def _conversations_info(self, args: JSON) -> JSON:
        return {"channel": self._channel_payload(self._channel_arg(args))}

    async def _conversations_history(self, args: JSON) -> JSON:
        channel = self._channel_arg(args)
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")
        inclusive = _flag(args, "inclusive")
        found = []
        for ts in reversed(self._channel_messages.get(channel.id, [])):
            stored = self._messages[ts]
            thread_ts = stored.payload.get("thread_ts")
            if stored.deleted or (thread_ts not in (None, ts)):
                continue
            value = float(ts)
            inside = oldest <= value <= latest if inclusive else oldest < value < latest
            if inside:
                found.append(self._public(stored))
        return self._page(found, args)

    async def _conversations_replies(self, args: JSON) -> JSON:
        channel = self._channel_arg(args)
        stored = self._messages.get(self._required(args, "ts"))
        if stored is None or stored.channel != channel.id:
            raise SlackError("thread_not_found")
        root = stored.payload.get("thread_ts") or stored.payload["ts"]
        return self._page(self.messages(channel.id, root), args)

    async def _files_info(self, args: JSON) -> JSON:
        file = self.files.get(self._required(args, "file"))
        if file is None:
            raise SlackError("file_not_found")
        return {
            "file": self._file_payload(file),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    async def _views_open(self, args: JSON) -> JSON:
        trigger_id = self._required(args, "trigger_id")
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if asyncio.get_running_loop().time() - trigger.issued_at > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        view = _json_arg(args, "view")
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise SlackError("invalid_arguments")
        if view["type"] == "modal" and not view.get("title"):
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: title"]},
            )
        self._check_blocks(view.get("blocks") or [])
        opened = {
            "id": self._new_id("V"),
            "team_id": self.team_id,
            "type": view["type"],
            "title": view.get("title"),
            "blocks": view.get("blocks") or [],
            "close": view.get("close"),
            "submit": view.get("submit"),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": secrets.token_hex(8),
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": None,
            "previous_view_id": None,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "bot_id": self.bot_id,
            "user": trigger.user,
        }
        opened["root_view_id"] = opened["id"]
        self.views.append(copy.deepcopy(opened))
        return {"view": opened}


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A running :class:`FakeSlack` in Socket Mode, for one test."""
    async with FakeSlack() as fake:
        yield fake

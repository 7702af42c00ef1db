"""A fake Discord (REST API, gateway websocket, attachment CDN) on 127.0.0.1 for tests.

The real discord.py client talks to it over real sockets. Build the world, then
connect a client and drive it the way users would::

    async with FakeDiscord() as fake:
        guild = fake.add_guild("Library")
        channel = fake.add_channel(guild, "general")
        alice = fake.add_member(guild, "alice")
        bot = MyBot(intents=intents, guild_ready_timeout=0.05)
        async with fake.connected(bot):
            asked = await fake.send_message(channel, alice, f"<@{fake.bot_id}> hi")
            reply = await fake.wait_for(lambda: fake.replies_to(asked["id"]))

What the fake models, as Discord does it:

* Snowflake ids (ints here, strings on the wire) that grow with time.
* ``GET /users/@me`` and ``GET /oauth2/applications/@me`` for login; the
  application's flags allow the privileged intents unless the constructor says
  otherwise, and IDENTIFY asking for a disallowed one is closed with 4014.
* A gateway session per IDENTIFY: READY, then a GUILD_CREATE per guild (members
  only with the GUILD_MEMBERS intent), heartbeats, sequence numbers, RESUME with
  replay of what the client missed, ``zlib-stream`` compression when asked.
* Messages with their full edit history. The bot sees every message it posts
  (MESSAGE_CREATE), message content is emptied for sessions without the
  MESSAGE_CONTENT intent unless the bot is the author or is mentioned, content
  over 2000 characters and empty messages are refused with Discord's errors.
  A reply to a deleted message is refused (400, 50035, ``message_reference``:
  "Unknown message") unless its reference says ``fail_if_not_exists: false``,
  which makes it a normal message.
* Interactions: the callback (once, within ``ack_deadline`` seconds), follow-ups,
  ``@original`` edits; a deferred "thinking" answer is replaced by the first
  follow-up, as Discord does. Ephemeral messages are kept (flag 64) but never
  dispatched on the gateway nor listed by the channel's REST endpoints.
* Rate limit headers on every answer; :meth:`FakeDiscord.fail_next` injects a
  429 (with ``Via``, without which discord.py assumes a Cloudflare ban) or any
  other status.

Every REST and CDN call is kept in :attr:`FakeDiscord.requests`, calls to routes
the fake does not know in :attr:`FakeDiscord.unknown_routes`, and exceptions
raised inside the fake in :attr:`FakeDiscord.errors`: a test should end with
these last two empty.
Waiting is done with :meth:`FakeDiscord.wait_for`, which re-checks a predicate
each time the fake records something, never with sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import math
import mimetypes
import re
import secrets
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any
from urllib.parse import quote

import discord
import discord.gateway
import discord.http
import pytest
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

__all__ = [
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "RecordedRequest",
    "fake_discord",
]

JSON = dict[str, Any]
Handler = Callable[["_Call"], Awaitable[Any]]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15

# Application flags: the "limited" variants are what an unverified bot gets.
_PRESENCE_LIMITED = 1 << 13
_GUILD_MEMBERS_LIMITED = 1 << 15
_MESSAGE_CONTENT_LIMITED = 1 << 19
_COMMAND_BADGE = 1 << 23

# Message flags.
HAS_THREAD = 1 << 5
EPHEMERAL = 1 << 6
LOADING = 1 << 7
# The flags a bot may set when it sends or edits a message.
_SETTABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)

# Message types.
DEFAULT_MESSAGE = 0
REPLY = 19
CHAT_INPUT_COMMAND = 20

# Interaction types and callback types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

TEXT_CHANNEL = 0
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
_THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)
_MESSAGEABLE_TYPES = (TEXT_CHANNEL, 2, 5, 13, *_THREAD_TYPES)

ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
_VIEW_CHANNEL = discord.Permissions(view_channel=True).value
DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    create_private_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    read_message_history=True,
    use_application_commands=True,
    change_nickname=True,
    create_instant_invite=True,
    connect=True,
    speak=True,
).value
"""What ``@everyone`` may do in a new guild."""
DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    read_message_history=True,
    use_application_commands=True,
).value
"""What the bot's managed role grants: what an invite link usually asks for."""

_DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
_last_snowflake = 0


def _snowflake() -> int:
    """A new id: milliseconds since the Discord epoch in the high bits, always increasing."""
    global _last_snowflake
    now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
    _last_snowflake = max(now, _last_snowflake + 1)
    return _last_snowflake


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # discord.py parses a body as JSON only if Content-Type is exactly
    # "application/json": aiohttp's json_response would append "; charset=utf-8".
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(payload).encode(), status=status, headers=all_headers)


class DiscordError(Exception):
    """An error answer as Discord sends it: ``{"message": ..., "code": ...}``."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> web.Response:
        """The HTTP answer."""
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return _json_response(body, self.status)


def _form_error(path: str, code: str, message: str) -> DiscordError:
    # Invalid Form Body nests errors by field path: {"content": {"_errors": [...]}}.
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path.split(".")):
        errors = {key: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


@dataclass
class RecordedRequest:
    """One REST call: ``files`` are the uploaded file names, ``json`` the JSON body
    (for multipart/form-data, the ``payload_json`` part)."""

    method: str
    path: str
    json: Any = None
    files: tuple[str, ...] = ()
    query: dict[str, str] = field(default_factory=dict)
    status: int = 0


@dataclass
class FakeUser:
    """A Discord user."""

    id: int
    name: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> JSON:
        """The user object."""
        data: JSON = {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class FakeRole:
    """A guild role; ``@everyone`` has the guild's id."""

    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    def payload(self) -> JSON:
        """The role object."""
        data: JSON = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class FakeMember:
    """A user's membership of a guild; ``roles`` leaves out ``@everyone``."""

    user_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=_now)


@dataclass
class FakeChannel:
    """A guild channel or thread. ``overwrites`` are Discord permission overwrite
    objects: ``{"id": role or user id, "type": 0 role / 1 member, "allow": "…", "deny": "…"}``."""

    id: int
    guild_id: int
    name: str
    type: int = TEXT_CHANNEL
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    overwrites: list[JSON] = field(default_factory=list)
    last_message_id: int | None = None
    message_count: int = 0
    auto_archive_duration: int = 1440
    created_at: str = field(default_factory=_now)

    @property
    def is_thread(self) -> bool:
        """Whether this is a thread."""
        return self.type in _THREAD_TYPES

    def payload(self) -> JSON:
        """The channel object."""
        data: JSON = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "parent_id": None if self.parent_id is None else str(self.parent_id),
            "last_message_id": None if self.last_message_id is None else str(self.last_message_id),
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.is_thread:
            data.update(
                owner_id=str(self.owner_id),
                message_count=self.message_count,
                total_message_sent=self.message_count,
                member_count=1,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": self.created_at,
                    "locked": False,
                    "create_timestamp": self.created_at,
                },
            )
        else:
            data.update(
                position=self.position,
                permission_overwrites=copy.deepcopy(self.overwrites),
                topic=self.topic,
                nsfw=False,
            )
        return data


@dataclass
class FakeGuild:
    """A guild: its roles (``@everyone`` included), members and channels."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=_now)


@dataclass
class _Stored:
    payload: JSON
    guild_id: int | None
    versions: list[JSON]
    allowed_mentions: JSON | None = None
    deleted: bool = False
    reactions: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class _Upload:
    field: str
    filename: str
    data: bytes


@dataclass
class _Call:
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    uploads: list[_Upload]

    def int_param(self, name: str) -> int:
        return int(self.params[name])


@dataclass
class _FailRule:
    method: str
    path: re.Pattern[str]
    status: int
    retry_after: float
    times: int
    is_global: bool
    body: JSON | None


@dataclass(eq=False)
class _Session:
    id: str
    intents: int
    shard: tuple[int, int] | None
    events: list[JSON] = field(default_factory=list)
    connection: _Connection | None = None
    sent: int = 0
    dead: bool = False

    def covers(self, guild_id: int | None) -> bool:
        if guild_id is None or self.shard is None:
            return True
        shard_id, count = self.shard
        return (guild_id >> 22) % count == shard_id


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    compressor: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: _Session | None = None
    live: bool = False
    closing_by_server: bool = False


@dataclass(eq=False)
class FakeInteraction:
    """An interaction the fake dispatched, and what the bot answered to it."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str = field(repr=False)
    type: int
    guild_id: int
    channel_id: int
    user_id: int
    payload: JSON = field(repr=False)
    dispatched_at: float
    message_id: int | None = None
    """For a component interaction: the message whose component was used."""
    callbacks: list[JSON] = field(default_factory=list)
    """``{"type": callback type, "data": ..., "files": [names]}`` for each callback accepted."""
    followup_ids: list[int] = field(default_factory=list)
    original_id: int | None = None
    answered_at: float | None = None
    """Loop time the first callback arrived (compare with ``dispatched_at``)."""

    async def response(self, timeout: float = 10.0) -> JSON:
        """Wait for the bot's callback and return it (``{"type", "data", "files"}``)."""
        return await self.fake.wait_for(
            lambda: self.callbacks[0] if self.callbacks else None,
            timeout,
            what=f"a callback to interaction {self.id}",
        )

    async def followup(self, index: int = 0, timeout: float = 10.0) -> JSON:
        """Wait for follow-up number ``index`` and return its message as it is now."""
        await self.fake.wait_for(
            lambda: len(self.followup_ids) > index,
            timeout,
            what=f"follow-up {index} of interaction {self.id}",
        )
        return self.fake.message(self.followup_ids[index])

    @property
    def followups(self) -> list[JSON]:
        """The follow-up messages, as they are now."""
        return [self.fake.message(message_id) for message_id in self.followup_ids]

    @property
    def original(self) -> JSON | None:
        """The original response message, as it is now (None before one exists)."""
        return None if self.original_id is None else self.fake.message(self.original_id)


def _walk_components(components: Sequence[JSON]) -> Iterator[JSON]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components", []))
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield accessory


class FakeDiscord:
    """A fake Discord on 127.0.0.1; use as ``async with FakeDiscord() as fake``.

    ``message_content_allowed`` (and ``members_allowed``, ``presences_allowed``)
    set the application's privileged intent flags. ``ack_deadline`` is how long
    the bot has to answer an interaction (Discord: 3 s; None for no limit).
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "Archivist",
        message_content_allowed: bool = True,
        members_allowed: bool = True,
        presences_allowed: bool = True,
        heartbeat_interval: int = 41250,
        ack_deadline: float | None = 3.0,
        upload_limit: int = _DEFAULT_UPLOAD_LIMIT,
        compress: bool = True,
    ) -> None:
        self.token = token
        self.api_base = ""
        self.gateway_url = ""
        self.cdn_base = ""
        self.heartbeat_interval = heartbeat_interval
        self.ack_deadline = ack_deadline
        self.upload_limit = upload_limit
        self.compress = compress
        """Honour ``compress=zlib-stream`` on the gateway (discord.py asks for it)."""
        self.message_content_allowed = message_content_allowed
        self.members_allowed = members_allowed
        self.presences_allowed = presences_allowed

        self.bot_user = FakeUser(_snowflake(), bot_name, bot=True)
        self.app_owner = FakeUser(_snowflake(), f"{bot_name.lower()}-developer")
        self.users: dict[int, FakeUser] = {
            self.bot_user.id: self.bot_user,
            self.app_owner.id: self.app_owner,
        }
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}

        self.requests: list[RecordedRequest] = []
        """Every REST call (path after the API base) and CDN download, as answered."""
        self.unknown_routes: list[tuple[str, str]] = []
        """``(method, path)`` of calls to routes the fake does not implement."""
        self.errors: list[str] = []
        """Tracebacks of exceptions raised inside the fake's handlers."""
        self.cdn_requests: list[str] = []
        """The path of every CDN download (``/attachments/…``)."""
        self.identifies: list[JSON] = []
        """The ``d`` of every IDENTIFY received."""
        self.gateway_payloads: list[JSON] = []
        """Every payload the client sent on the gateway (heartbeats included)."""
        self.gateway_queries: list[dict[str, str]] = []
        """The query string of every gateway connection (``v``, ``encoding``, ``compress``)."""
        self.resumes = 0
        """How many RESUMEs succeeded."""
        self.gateway_refusals = 0
        """Gateway connections answered 503 inside :meth:`gateway_down`."""
        self._gateway_down = False
        self.resumed = asyncio.Event()
        """Set on each successful RESUME (clear it to wait for the next one)."""
        self.interactions: dict[int, FakeInteraction] = {}

        self._messages: dict[int, _Stored] = {}
        self._channel_messages: dict[int, list[int]] = {}
        self._typing: dict[int, int] = {}
        self._attachments: dict[int, tuple[JSON, bytes]] = {}
        self._commands: dict[int | None, list[JSON]] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._fail_rules: list[_FailRule] = []
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed_condition = asyncio.Condition()
        self._gateway_open = asyncio.Event()
        self._gateway_open.set()
        self._routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self._add_routes()

        app = web.Application(client_max_size=4 * upload_limit + 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v{version:\\d+}/{tail:.*}", self._api)
        app.router.add_route("GET", "/attachments/{tail:.*}", self._cdn)
        app.router.add_route("GET", "/media/attachments/{tail:.*}", self._cdn)
        app.router.add_route("*", "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)

    # --- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.cdn_base = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.cdn_base}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._gateway_open.set()
        for connection in list(self._connections):
            connection.closing_by_server = True
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"Fake Discord is shutting down")
        for task in list(self._tasks):
            task.cancel()
        await self._runner.cleanup()

    @property
    def bot_id(self) -> int:
        """The bot user's id (also the application id)."""
        return self.bot_user.id

    @property
    def live_connections(self) -> int:
        """Gateway connections with an identified or resumed session."""
        return sum(1 for connection in self._connections if connection.live)

    @property
    def application_id(self) -> int:
        """The application id: the bot's, as for every bot created since 2019."""
        return self.bot_user.id

    @contextlib.contextmanager
    def patch_client(self) -> Iterator[FakeDiscord]:
        """Point discord.py's REST base and default gateway at this fake, then restore them."""
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    @contextlib.asynccontextmanager
    async def connected(
        self, client: discord.Client, *, timeout: float = 10.0
    ) -> AsyncIterator[discord.Client]:
        """Log ``client`` in, run ``client.connect(reconnect=True)`` in a task until it
        is ready; close it on exit. Errors of ``connect()`` (such as
        :class:`discord.PrivilegedIntentsRequired`) are raised on entry."""
        with self.patch_client():
            await client.login(self.token)
            runner = asyncio.create_task(client.connect(reconnect=True), name="discord-connect")
            ready = asyncio.create_task(client.wait_until_ready(), name="discord-ready")
            try:
                done, _ = await asyncio.wait(
                    {runner, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if runner in done:
                    runner.result()
                    raise RuntimeError("client.connect() returned before the client was ready")
                if ready not in done:
                    raise TimeoutError(f"the client was not ready within {timeout} s")
                yield client
            finally:
                ready.cancel()
                await client.close()
                if not runner.done():
                    await asyncio.wait_for(runner, timeout)
                elif not runner.cancelled():
                    runner.exception()  # already raised above; mark it retrieved

    # --- building the world ---------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False) -> int:
        """A user who is in no guild yet; returns its id."""
        user = FakeUser(_snowflake(), name, bot=bot)
        self.users[user.id] = user
        return user.id

    def add_guild(
        self,
        name: str,
        *,
        owner_id: int | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
    ) -> int:
        """A guild the bot is in (with its managed role ``bot_permissions``); returns its id.

        Without ``owner_id`` a user "<name>-owner" is created to own it.
        """
        guild_id = _snowflake()
        if owner_id is None:
            owner_id = self.add_user(f"{name.lower().replace(' ', '-')}-owner")
        guild = FakeGuild(guild_id, name, owner_id)
        guild.roles[guild_id] = FakeRole(guild_id, "@everyone", everyone_permissions)
        bot_role = FakeRole(_snowflake(), self.bot_user.name, bot_permissions, 1, True, self.bot_id)
        guild.roles[bot_role.id] = bot_role
        guild.members[owner_id] = FakeMember(owner_id)
        guild.members[self.bot_id] = FakeMember(self.bot_id, [bot_role.id])
        self.guilds[guild_id] = guild
        self._emit_soon("GUILD_CREATE", lambda s: self._guild_create(guild, s), guild_id)
        return guild_id

    def add_role(self, guild_id: int, name: str, permissions: int = 0) -> int:
        """A role in the guild; returns its id."""
        guild = self.guilds[guild_id]
        role = FakeRole(_snowflake(), name, permissions, len(guild.roles))
        guild.roles[role.id] = role
        self._emit_soon(
            "GUILD_ROLE_CREATE",
            lambda s: {"guild_id": str(guild_id), "role": role.payload()},
            guild_id,
        )
        return role.id

    def add_channel(
        self,
        guild_id: int,
        name: str,
        *,
        type: int = TEXT_CHANNEL,
        topic: str | None = None,
        overwrites: Sequence[JSON] = (),
    ) -> int:
        """A channel in the guild (text by default); returns its id."""
        guild = self.guilds[guild_id]
        channel = FakeChannel(
            _snowflake(),
            guild_id,
            name,
            type,
            position=len(guild.channel_ids),
            topic=topic,
            overwrites=[dict(overwrite) for overwrite in overwrites],
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self._emit_soon("CHANNEL_CREATE", lambda s: channel.payload(), guild_id)
        return channel.id

    def add_member(
        self,
        guild_id: int,
        name: str = "",
        roles: Sequence[int] = (),
        bot: bool = False,
        *,
        user_id: int | None = None,
        nick: str | None = None,
    ) -> int:
        """Make a new user ``name`` (or the existing ``user_id``) a member; returns the user id."""
        guild = self.guilds[guild_id]
        if user_id is None:
            user_id = self.add_user(name, bot=bot)
        unknown = [role for role in roles if role not in guild.roles]
        if unknown:
            raise ValueError(f"roles {unknown} are not in guild {guild_id}")
        member = FakeMember(user_id, [role for role in roles if role != guild_id], nick)
        guild.members[user_id] = member

        def build(session: _Session) -> JSON | None:
            if not session.intents & GUILD_MEMBERS:
                return None
            return {"guild_id": str(guild_id), **self._member_payload(guild, user_id)}

        self._emit_soon("GUILD_MEMBER_ADD", build, guild_id)
        return user_id

    def add_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = "application/pdf",
        *,
        channel_id: int = 0,
        description: str | None = None,
    ) -> JSON:
        """Put ``data`` on the CDN; returns the attachment object pointing at it."""
        attachment_id = _snowflake()
        path = f"attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        # Discord signs CDN links; the query is part of the URL a bot gets.
        expires = f"{int(time.time()) + 86400:x}"
        signature = f"?ex={expires}&is={int(time.time()):x}&hm={secrets.token_hex(32)}&"
        attachment: JSON = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": f"{self.cdn_base}/{path}{signature}",
            "proxy_url": f"{self.cdn_base}/media/{path}{signature}",
            "content_type": content_type,
            "flags": 0,
        }
        if description is not None:
            attachment["description"] = description
        self._attachments[attachment_id] = (attachment, data)
        return copy.deepcopy(attachment)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 429,
        retry_after: float = 0.05,
        times: int = 1,
        *,
        is_global: bool = False,
        body: JSON | None = None,
    ) -> None:
        """Make the next ``times`` calls matching fail with ``status``.

        ``path_regex`` must match the whole path after the API base (for example
        ``r"/channels/\\d+/messages"``), or a CDN path (``r"/attachments/.*"``);
        ``method`` may be ``"*"``. A 429 carries Discord's body and headers. Note
        that discord.py retries 500, 502, 504 and 524 after sleeping 1 s, 3 s…
        """
        self._fail_rules.append(
            _FailRule(
                method.upper(), re.compile(path_regex), status, retry_after, times, is_global, body
            )
        )

    # --- reading the state ----------------------------------------------------------

    def message(self, message_id: int | str) -> JSON:
        """A message as it is now (deleted ones too)."""
        return copy.deepcopy(self._messages[int(message_id)].payload)

    def messages(self, channel_id: int) -> list[JSON]:
        """The channel's messages, oldest first, ephemeral ones (flag 64) included."""
        return [
            copy.deepcopy(self._messages[message_id].payload)
            for message_id in self._channel_messages.get(channel_id, [])
            if not self._messages[message_id].deleted
        ]

    def bot_messages(self, channel_id: int) -> list[JSON]:
        """The channel's messages authored by the bot (interaction answers included)."""
        return [m for m in self.messages(channel_id) if int(m["author"]["id"]) == self.bot_id]

    def replies_to(self, message_id: int | str) -> list[JSON]:
        """Messages replying to ``message_id``."""
        stored = self._messages[int(message_id)]
        channel_id = int(stored.payload["channel_id"])
        return [
            m
            for m in self.messages(channel_id)
            if m.get("message_reference", {}).get("message_id") == str(message_id)
        ]

    def edits(self, message_id: int | str) -> list[JSON]:
        """Every version of a message: as posted first, then after each edit."""
        return copy.deepcopy(self._messages[int(message_id)].versions)

    def is_deleted(self, message_id: int | str) -> bool:
        """Whether the message was deleted."""
        return self._messages[int(message_id)].deleted

    def allowed_mentions(self, message_id: int | str) -> JSON | None:
        """The ``allowed_mentions`` the bot sent with the message (last create or edit)."""
        return copy.deepcopy(self._messages[int(message_id)].allowed_mentions)

    def reactions(self, message_id: int | str) -> dict[str, list[int]]:
        """Emoji → ids of the users who reacted with it."""
        return copy.deepcopy(self._messages[int(message_id)].reactions)

    def typing(self, channel_id: int) -> int:
        """How many times the bot triggered the typing indicator in the channel."""
        return self._typing.get(channel_id, 0)

    def commands(self, guild_id: int | None = None) -> list[JSON]:
        """The application commands registered globally, or for ``guild_id``."""
        return copy.deepcopy(self._commands.get(guild_id, []))

    def find_requests(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """The recorded REST calls whose method and whole path match."""
        pattern = re.compile(path_regex)
        return [
            request
            for request in self.requests
            if method.upper() in ("*", request.method) and pattern.fullmatch(request.path)
        ]

    def gateway_events(self, name: str | None = None) -> list[JSON]:
        """The dispatches (``{"op": 0, "t", "s", "d"}``) of the latest session, or of one kind."""
        if not self._sessions:
            return []
        session = list(self._sessions.values())[-1]
        return [copy.deepcopy(e) for e in session.events if name is None or e["t"] == name]

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, *, what: str = ""
    ) -> Any:
        """Wait until ``predicate()`` is truthy and return its value.

        It is checked now and again every time the fake records a REST or CDN
        request, a gateway payload from the client, a connection or a
        disconnection: so it should look at the fake's state. Nothing wakes it
        when the client merely processes an event; for the client's own state
        use its signals (``client.wait_for(...)``, an event set by a handler).
        """
        async with self._changed_condition:
            try:
                return await asyncio.wait_for(self._changed_condition.wait_for(predicate), timeout)
            except asyncio.TimeoutError:
                live = self.live_connections
                last = [(r.method, r.path, r.status) for r in self.requests[-5:]]
                raise TimeoutError(
                    f"waited {timeout} s for {what or 'a condition'}; live gateway connections:"
                    f" {live}; last requests: {last}; unknown routes: {self.unknown_routes};"
                    f" errors: {self.errors}"
                ) from None

    async def _changed(self) -> None:
        async with self._changed_condition:
            self._changed_condition.notify_all()

    # --- acting as users ------------------------------------------------------------

    async def send_message(
        self,
        channel_id: int,
        author_id: int,
        content: str = "",
        attachments: Sequence[JSON] = (),
        mentions: Sequence[int] | None = None,
        *,
        reply_to: int | str | None = None,
        embeds: Sequence[JSON] = (),
    ) -> JSON:
        """A user posts a message (MESSAGE_CREATE); returns it.

        ``mentions`` default to the ``<@id>`` in ``content``; a reply also mentions
        the replied-to author, as the official client does by default.
        """
        channel = self._channel(channel_id)
        guild = self.guilds[channel.guild_id]
        if author_id not in guild.members:
            raise ValueError(f"user {author_id} is not a member of guild {guild.id}")
        body: JSON = {"content": content}
        mention_ids = (
            list(mentions) if mentions is not None else self._parsed_mentions(content, None)[0]
        )
        reference = None
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to)}
            reference = self._messages[int(reply_to)]
            replied_author = int(reference.payload["author"]["id"])
            if replied_author not in mention_ids:
                mention_ids.append(replied_author)
        stored = self._new_message(
            channel,
            author_id,
            body,
            attachments=[copy.deepcopy(dict(a)) for a in attachments],
            embeds=[dict(e) for e in embeds],
            mention_ids=mention_ids,
            role_ids=self._parsed_mentions(content, None)[1],
        )
        await self._dispatch_message("MESSAGE_CREATE", stored)
        return copy.deepcopy(stored.payload)

    async def redeliver(self, message_id: int | str) -> None:
        """Dispatch a message's MESSAGE_CREATE again to every live session.

        Gateway events come at least once: a session resumed from an older sequence
        number is sent again what its client had already handled, so a bot must
        recognise a message it has answered.
        """
        await self._dispatch_message("MESSAGE_CREATE", self._messages[int(message_id)])

    async def delete_message(self, message_id: int | str) -> None:
        """Its author (or a moderator) deletes a message: MESSAGE_DELETE is dispatched."""
        stored = self._messages[int(message_id)]
        if stored.deleted:
            raise ValueError(f"message {message_id} is already deleted")
        await self._delete(stored)
        await self._changed()

    async def slash(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] = (),
        *,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A member runs the slash command ``name`` ("group sub" for subcommands).

        ``options`` map option names to values (types come from the synced
        command, or are guessed: str, int, float, bool; an attachment dict from
        :meth:`add_attachment` for attachment options; ids for users, roles and
        channels), or are raw Discord option objects.
        """
        data = self._command_data(guild_id, user_id, name, options, None)
        return await self._interact(
            APPLICATION_COMMAND, guild_id, channel_id, user_id, data, locale
        )

    async def autocomplete(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        focused: str,
        *,
        timeout: float = 10.0,
    ) -> list[JSON]:
        """A member types into option ``focused``; returns the choices the bot offered."""
        data = self._command_data(guild_id, user_id, name, options, focused)
        interaction = await self._interact(AUTOCOMPLETE, guild_id, channel_id, user_id, data)
        callback = await interaction.response(timeout)
        if callback["type"] != AUTOCOMPLETE_RESULT:
            raise AssertionError(f"the bot answered autocomplete with callback {callback}")
        choices: list[JSON] = (callback["data"] or {}).get("choices", [])
        return choices

    async def click(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        message_id: int | str,
        custom_id: str,
        *,
        values: Sequence[str] | None = None,
    ) -> FakeInteraction:
        """A member uses the component ``custom_id`` of a message (a button, or a
        select menu when ``values`` are given); a disabled one cannot be used, as in
        Discord's clients."""
        stored = self._messages[int(message_id)]
        component = next(
            (
                c
                for c in _walk_components(stored.payload.get("components", []))
                if c.get("custom_id") == custom_id
            ),
            None,
        )
        if component is None:
            raise ValueError(f"message {message_id} has no component {custom_id!r}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} of message {message_id} is disabled")
        data: JSON = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = list(values)
        return await self._interact(
            MESSAGE_COMPONENT, guild_id, channel_id, user_id, data, message=stored
        )

    async def submit_modal(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        custom_id: str,
        values: Mapping[str, str],
    ) -> FakeInteraction:
        """A member submits a modal whose text inputs ``custom_id → value`` are given."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        data = {"custom_id": custom_id, "components": rows}
        return await self._interact(MODAL_SUBMIT, guild_id, channel_id, user_id, data)

    # --- gateway control ------------------------------------------------------------

    async def dispatch_raw(self, event: str, data: JSON, guild_id: int | None = None) -> None:
        """Dispatch ``event`` with ``data`` exactly as given to every live session (one that
        follows the guild's shard): a payload Discord should not send, for instance."""
        await self._dispatch(event, lambda session: copy.deepcopy(data), guild_id)

    async def reconnect(self) -> None:
        """Send op 7 RECONNECT on every live connection and close it, as Discord
        does; the client comes back with RESUME (see :attr:`resumes`)."""
        for connection in [c for c in self._connections if c.live]:
            connection.live = False
            connection.closing_by_server = True
            await self._send(connection, {"op": 7, "d": None, "s": None, "t": None})
            await connection.ws.close(code=4000, message=b"Reconnect requested")

    async def disconnect(self, code: int = 4000) -> None:
        """Close every live connection with ``code`` (4000 is resumable, 4004 is not)."""
        for connection in [c for c in self._connections if c.live]:
            connection.live = False
            connection.closing_by_server = True
            await connection.ws.close(code=code, message=b"Closed by the fake")

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; unless ``resumable`` the client must IDENTIFY anew."""
        for connection in [c for c in self._connections if c.live]:
            if connection.session is not None and not resumable:
                connection.session.dead = True
            connection.live = False
            await self._send(connection, {"op": 9, "d": resumable, "s": None, "t": None})

    @contextlib.asynccontextmanager
    async def gateway_held(self) -> AsyncIterator[None]:
        """While inside, new gateway connections get no HELLO: a test can act while
        the bot is offline (after :meth:`reconnect`), then let it resume."""
        self._gateway_open.clear()
        try:
            yield
        finally:
            self._gateway_open.set()

    @contextlib.contextmanager
    def gateway_down(self) -> Iterator[None]:
        """While inside, the gateway answers 503 instead of opening a websocket (an outage);
        :attr:`gateway_refusals` counts the attempts."""
        self._gateway_down = True
        try:
            yield
        finally:
            self._gateway_down = False

    # --- gateway --------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self._gateway_down:
            self.gateway_refusals += 1
            await self._changed()
            return web.Response(status=503, text="upstream connect error")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        query = dict(request.query)
        self.gateway_queries.append(query)
        compressor = (
            zlib.compressobj() if self.compress and query.get("compress") == "zlib-stream" else None
        )
        connection = _Connection(ws, compressor)
        self._connections.add(connection)
        try:
            await self._gateway_open.wait()
            hello = {"heartbeat_interval": self.heartbeat_interval, "_trace": ["fake-gateway"]}
            await self._send(connection, {"op": 10, "d": hello, "s": None, "t": None})
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                self.gateway_payloads.append(payload)
                await self._on_gateway_payload(connection, payload)
                await self._changed()
        except Exception:
            self.errors.append(traceback.format_exc())
        finally:
            connection.live = False
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                # A client closing with 1000/1001 ends its session, as on Discord.
                if not connection.closing_by_server and ws.close_code in (1000, 1001):
                    session.dead = True
            await self._changed()
        return ws

    async def _on_gateway_payload(self, connection: _Connection, payload: JSON) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:
            await self._send(connection, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(connection, data or {})
        elif op == 6:
            await self._resume(connection, data or {})
        elif op == 8:
            await self._request_members(connection, data or {})
        elif op not in (3, 4):
            await self._close(connection, 4001, "Unknown opcode.")

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.token

    async def _identify(self, connection: _Connection, data: JSON) -> None:
        self.identifies.append(copy.deepcopy(data))
        if connection.session is not None:
            await self._close(connection, 4005, "Already authenticated.")
            return
        if not self._token_ok(data.get("token")):
            await self._close(connection, 4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await self._close(connection, 4013, "Invalid intent(s).")
            return
        disallowed = 0
        if not self.message_content_allowed:
            disallowed |= MESSAGE_CONTENT
        if not self.members_allowed:
            disallowed |= GUILD_MEMBERS
        if not self.presences_allowed:
            disallowed |= GUILD_PRESENCES
        if intents & disallowed:
            await self._close(connection, 4014, "Disallowed intent(s).")
            return
        shard = data.get("shard")
        session = _Session(
            secrets.token_hex(16), intents, (int(shard[0]), int(shard[1])) if shard else None
        )
        self._sessions[session.id] = session
        session.connection = connection
        connection.session = session
        connection.live = True
        guilds = [g for g in self.guilds.values() if session.covers(g.id)]
        ready: JSON = {
            "v": 10,
            "user": self._me_payload(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "user_settings": {},
            "_trace": ["fake-gateway"],
        }
        if shard:
            ready["shard"] = [int(shard[0]), int(shard[1])]
        self._queue(session, "READY", ready)
        for guild in guilds:
            self._queue(session, "GUILD_CREATE", self._guild_create(guild, session))
        await self._flush(session)

    async def _resume(self, connection: _Connection, data: JSON) -> None:
        if not self._token_ok(data.get("token")):
            await self._close(connection, 4004, "Authentication failed.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        seq = data.get("seq") or 0
        if session is None or session.dead or not 0 <= seq <= len(session.events):
            await self._send(connection, {"op": 9, "d": False, "s": None, "t": None})
            return
        previous = session.connection
        if previous is not None and previous is not connection:
            previous.live = False
            previous.closing_by_server = True
            self._spawn(previous.ws.close(code=4000, message=b"Session resumed elsewhere"))
        session.connection = connection
        connection.session = session
        session.sent = seq
        connection.live = True
        async with connection.lock:
            await self._flush_locked(session, connection)
            resumed = {"op": 0, "t": "RESUMED", "s": None, "d": {"_trace": ["fake-gateway"]}}
            await self._write(connection, resumed)
        self.resumes += 1
        self.resumed.set()

    async def _request_members(self, connection: _Connection, data: JSON) -> None:
        session = connection.session
        guild = self.guilds.get(int(data.get("guild_id", 0)))
        if session is None or guild is None:
            return
        wanted = data.get("user_ids")
        query = str(data.get("query") or "").lower()
        members = [
            self._member_payload(guild, user_id)
            for user_id in guild.members
            if (wanted is None or str(user_id) in map(str, wanted))
            and self.users[user_id].name.lower().startswith(query)
        ]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self._queue(session, "GUILD_MEMBERS_CHUNK", chunk)
        await self._flush(session)

    def _queue(self, session: _Session, event: str, data: JSON) -> None:
        session.events.append({"op": 0, "t": event, "s": len(session.events) + 1, "d": data})

    def _emit(
        self, event: str, build: Callable[[_Session], JSON | None], guild_id: int | None
    ) -> list[_Session]:
        # Sequence numbers are given here, synchronously, so events keep the
        # order of the calls that produced them whatever the flushing does.
        touched = []
        for session in self._sessions.values():
            if session.dead or not session.covers(guild_id):
                continue
            data = build(session)
            if data is not None:
                self._queue(session, event, data)
                touched.append(session)
        return touched

    async def _dispatch(
        self, event: str, build: Callable[[_Session], JSON | None], guild_id: int | None
    ) -> None:
        for session in self._emit(event, build, guild_id):
            await self._flush(session)

    def _emit_soon(
        self, event: str, build: Callable[[_Session], JSON | None], guild_id: int | None
    ) -> None:
        for session in self._emit(event, build, guild_id):
            self._spawn(self._flush(session))

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, session: _Session) -> None:
        connection = session.connection
        if connection is None or not connection.live:
            return
        async with connection.lock:
            await self._flush_locked(session, connection)

    async def _flush_locked(self, session: _Session, connection: _Connection) -> None:
        while connection.live and session.connection is connection:
            if session.sent >= len(session.events):
                return
            if not await self._write(connection, session.events[session.sent]):
                return
            session.sent += 1

    async def _send(self, connection: _Connection, payload: JSON) -> bool:
        async with connection.lock:
            return await self._write(connection, payload)

    async def _write(self, connection: _Connection, payload: JSON) -> bool:
        text = json.dumps(payload)
        try:
            if connection.compressor is not None:
                data = connection.compressor.compress(text.encode())
                await connection.ws.send_bytes(
                    data + connection.compressor.flush(zlib.Z_SYNC_FLUSH)
                )
            else:
                await connection.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            connection.live = False
            return False
        return True

    async def _close(self, connection: _Connection, code: int, reason: str) -> None:
        connection.live = False
        connection.closing_by_server = True
        await connection.ws.close(code=code, message=reason.encode())

    # --- payloads -------------------------------------------------------------------

    def _application_flags(self) -> int:
        flags = _COMMAND_BADGE
        if self.message_content_allowed:
            flags |= _MESSAGE_CONTENT_LIMITED
        if self.members_allowed:
            flags |= _GUILD_MEMBERS_LIMITED
        if self.presences_allowed:
            flags |= _PRESENCE_LIMITED
        return flags

    def _me_payload(self) -> JSON:
        return {
            **self.bot_user.payload(),
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
            "premium_type": 0,
        }

    def _member_payload(self, guild: FakeGuild, user_id: int, *, with_user: bool = True) -> JSON:
        member = guild.members[user_id]
        data: JSON = {
            "nick": member.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(role) for role in member.roles],
            "joined_at": member.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.users[user_id].payload()
        return data

    def _guild_create(self, guild: FakeGuild, session: _Session) -> JSON:
        # Without GUILD_MEMBERS the member list holds only the bot, as on Discord.
        member_ids = list(guild.members) if session.intents & GUILD_MEMBERS else [self.bot_id]
        channels = [self.channels[c] for c in guild.channel_ids]
        return {
            **self._guild_payload(guild),
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "members": [self._member_payload(guild, user_id) for user_id in member_ids],
            "channels": [c.payload() for c in channels if not c.is_thread],
            "threads": [c.payload() for c in channels if c.is_thread],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _guild_payload(self, guild: FakeGuild) -> JSON:
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [role.payload() for role in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }

    def _permissions(self, guild: FakeGuild, user_id: int, channel: FakeChannel | None) -> int:
        """Discord's permission computation: base from roles, then channel overwrites."""
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        permissions = guild.roles[guild.id].permissions
        for role_id in member.roles:
            permissions |= guild.roles[role_id].permissions
        if permissions & ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is not None and channel.is_thread and channel.parent_id is not None:
            channel = self.channels[channel.parent_id]
        if channel is None:
            return permissions
        by_id = {int(o["id"]): o for o in channel.overwrites}

        def apply(permissions: int, overwrites: list[JSON]) -> int:
            deny = allow = 0
            for overwrite in overwrites:
                deny |= int(overwrite.get("deny", 0))
                allow |= int(overwrite.get("allow", 0))
            return (permissions & ~deny) | allow

        permissions = apply(permissions, [by_id[guild.id]] if guild.id in by_id else [])
        permissions = apply(permissions, [by_id[r] for r in member.roles if r in by_id])
        permissions = apply(permissions, [by_id[user_id]] if user_id in by_id else [])
        return permissions if permissions & _VIEW_CHANNEL else 0

    def _channel(self, channel_id: int) -> FakeChannel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _stored(self, channel_id: int, message_id: int) -> _Stored:
        stored = self._messages.get(message_id)
        if (
            stored is None
            or stored.deleted
            or int(stored.payload["channel_id"]) != channel_id
            or stored.payload["flags"] & EPHEMERAL
        ):
            raise DiscordError(404, 10008, "Unknown Message")
        return stored

    def _parsed_mentions(
        self, content: str, allowed: JSON | None
    ) -> tuple[list[int], list[int], bool]:
        """The users and roles ``content`` pings, and @everyone, as ``allowed_mentions`` permit."""
        parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
        allowed_users = set() if allowed is None else {int(u) for u in allowed.get("users", [])}
        allowed_roles = set() if allowed is None else {int(r) for r in allowed.get("roles", [])}
        users: list[int] = []
        for match in re.findall(r"<@!?(\d+)>", content):
            user_id = int(match)
            known = user_id in self.users and user_id not in users
            if known and ("users" in parse or user_id in allowed_users):
                users.append(user_id)
        roles = [
            int(r)
            for r in dict.fromkeys(re.findall(r"<@&(\d+)>", content))
            if "roles" in parse or int(r) in allowed_roles
        ]
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        return users, roles, everyone

    def _new_message(
        self,
        channel: FakeChannel,
        author_id: int,
        body: JSON,
        *,
        attachments: list[JSON],
        embeds: list[JSON],
        mention_ids: list[int],
        role_ids: list[int],
        everyone: bool = False,
        message_type: int | None = None,
        flags: int = 0,
        webhook_id: int | None = None,
        interaction: FakeInteraction | None = None,
    ) -> _Stored:
        message_id = _snowflake()
        payload: JSON = {
            "id": str(message_id),
            "type": DEFAULT_MESSAGE,
            "channel_id": str(channel.id),
            "author": self.users[author_id].payload(),
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": [self.users[user_id].payload() for user_id in mention_ids],
            "mention_roles": [str(role) for role in role_ids],
            "attachments": attachments,
            "embeds": embeds,
            "components": copy.deepcopy(body.get("components") or []),
            "pinned": False,
            "flags": flags,
        }
        if body.get("nonce") is not None:
            payload["nonce"] = body["nonce"]
        if body.get("poll") is not None:
            payload["poll"] = copy.deepcopy(body["poll"])
        if webhook_id is not None:
            payload["webhook_id"] = str(webhook_id)
            payload["application_id"] = str(self.application_id)
        if interaction is not None:
            payload["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self.users[interaction.user_id].payload(),
                "authorizing_integration_owners": {"0": str(interaction.guild_id)},
            }
        reference = body.get("message_reference")
        referenced = None if not reference else self._messages.get(int(reference["message_id"]))
        if reference and (referenced is None or referenced.deleted):
            if reference.get("fail_if_not_exists", True):
                raise _form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
            reference = None  # Discord sends it as a normal (non-reply) message
        if reference:
            referenced_id = int(reference["message_id"])
            payload["type"] = REPLY
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(referenced_id),
                "channel_id": str(reference.get("channel_id") or channel.id),
                "guild_id": str(channel.guild_id),
            }
            payload["referenced_message"] = (
                None if referenced is None else self._without_reference(referenced)
            )
        if message_type is not None:
            payload["type"] = message_type
        stored = _Stored(payload, channel.guild_id, [copy.deepcopy(payload)])
        self._messages[message_id] = stored
        self._channel_messages.setdefault(channel.id, []).append(message_id)
        if not flags & EPHEMERAL:
            channel.last_message_id = message_id
            if channel.is_thread:
                channel.message_count += 1
        return stored

    @staticmethod
    def _without_reference(stored: _Stored) -> JSON:
        payload = copy.deepcopy(stored.payload)
        payload.pop("referenced_message", None)
        return payload

    def _readable(self, intents: int, payload: JSON) -> bool:
        return bool(
            intents & MESSAGE_CONTENT
            or int(payload["author"]["id"]) == self.bot_id
            or any(int(user["id"]) == self.bot_id for user in payload.get("mentions", []))
        )

    @staticmethod
    def _strip_content(payload: JSON) -> None:
        payload.update(content="", embeds=[], attachments=[], components=[])
        payload.pop("poll", None)

    def _gateway_message(self, session: _Session, stored: _Stored) -> JSON | None:
        if stored.guild_id is not None and not session.intents & GUILD_MESSAGES:
            return None
        data = copy.deepcopy(stored.payload)
        if not self._readable(session.intents, data):
            self._strip_content(data)
        referenced = data.get("referenced_message")
        if referenced and not self._readable(session.intents, referenced):
            self._strip_content(referenced)
        guild = self.guilds.get(stored.guild_id) if stored.guild_id is not None else None
        if guild is not None:
            data["guild_id"] = str(guild.id)
            author_id = int(data["author"]["id"])
            if author_id in guild.members and "webhook_id" not in data:
                data["member"] = self._member_payload(guild, author_id, with_user=False)
            for user in data["mentions"]:
                if int(user["id"]) in guild.members:
                    user["member"] = self._member_payload(guild, int(user["id"]), with_user=False)
        return data

    def _rest_message(self, stored: _Stored) -> JSON:
        # REST answers follow the application's message-content flag, not intents.
        data = copy.deepcopy(stored.payload)
        access = MESSAGE_CONTENT if self.message_content_allowed else 0
        if not self._readable(access, data):
            self._strip_content(data)
        return data

    async def _dispatch_message(self, event: str, stored: _Stored) -> None:
        if stored.payload["flags"] & EPHEMERAL:
            return
        await self._dispatch(event, lambda s: self._gateway_message(s, stored), stored.guild_id)

    # --- REST -----------------------------------------------------------------------

    def _add_routes(self) -> None:
        snowflake = r"\d+"
        channel = rf"/channels/(?P<channel_id>{snowflake})"
        message = rf"{channel}/messages/(?P<message_id>{snowflake})"
        guild = rf"/guilds/(?P<guild_id>{snowflake})"
        commands = (
            rf"/applications/(?P<app_id>{snowflake})(?:/guilds/(?P<guild_id>{snowflake}))?/commands"
        )
        webhook = rf"/webhooks/(?P<app_id>{snowflake})/(?P<token>[^/]+)"
        webhook_message = rf"{webhook}/messages/(?P<message_id>@original|{snowflake})"
        routes: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/users/@me", self._get_me, True),
            ("GET", rf"/users/(?P<user_id>{snowflake})", self._get_user, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/applications/@me", self._get_application, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", commands, self._get_commands, True),
            ("PUT", commands, self._put_commands, True),
            ("GET", channel, self._get_channel, True),
            ("GET", f"{channel}/messages", self._list_messages, True),
            ("POST", f"{channel}/messages", self._post_message, True),
            ("GET", message, self._get_message, True),
            ("PATCH", message, self._patch_message, True),
            ("DELETE", message, self._delete_message, True),
            ("POST", f"{channel}/typing", self._post_typing, True),
            ("POST", f"{message}/threads", self._post_thread, True),
            ("POST", f"{channel}/threads", self._post_thread, True),
            ("PUT", rf"{message}/reactions/(?P<emoji>[^/]+)/@me", self._put_reaction, True),
            ("DELETE", rf"{message}/reactions/(?P<emoji>[^/]+)/@me", self._delete_reaction, True),
            ("GET", guild, self._get_guild, True),
            ("GET", f"{guild}/channels", self._get_guild_channels, True),
            ("GET", f"{guild}/roles", self._get_roles, True),
            ("GET", f"{guild}/members", self._list_members, True),
            ("GET", rf"{guild}/members/(?P<user_id>{snowflake})", self._get_member, True),
            (
                "POST",
                rf"/interactions/(?P<interaction_id>{snowflake})/(?P<token>[^/]+)/callback",
                self._post_callback,
                False,
            ),
            ("POST", webhook, self._post_followup, False),
            ("GET", webhook_message, self._get_webhook_message, False),
            ("PATCH", webhook_message, self._patch_webhook_message, False),
            ("DELETE", webhook_message, self._delete_webhook_message, False),
        ]
        self._routes = [(m, re.compile(p), h, auth) for m, p, h, auth in routes]

    async def _read_body(self, request: web.Request) -> tuple[Any, list[_Upload]]:
        if request.content_type == "multipart/form-data":
            body: Any = {}
            uploads: list[_Upload] = []
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                elif part.filename is not None:
                    data = bytes(await part.read(decode=False))
                    uploads.append(_Upload(part.name or "", part.filename, data))
                elif part.name:
                    body[part.name] = await part.text()
            return body, uploads
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None

    def _failure(self, method: str, path: str) -> web.Response | None:
        for rule in self._fail_rules:
            if rule.method in ("*", method) and rule.path.fullmatch(path):
                rule.times -= 1
                if rule.times <= 0:
                    self._fail_rules.remove(rule)
                if rule.status != 429:
                    body = rule.body or {"message": f"{rule.status}: Injected failure", "code": 0}
                    return _json_response(body, rule.status)
                retry = rule.retry_after
                body = rule.body or {
                    "message": "You are being rate limited.",
                    "retry_after": retry,
                    "global": rule.is_global,
                }
                headers = {
                    "Via": "1.1 google",
                    "Retry-After": str(max(1, math.ceil(retry))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                    "X-RateLimit-Reset-After": f"{retry:.3f}",
                    "X-RateLimit-Bucket": self._bucket(method, rule.path.pattern),
                    "X-RateLimit-Scope": "global" if rule.is_global else "user",
                }
                if rule.is_global:
                    headers["X-RateLimit-Global"] = "true"
                return _json_response(body, 429, headers)
        return None

    @staticmethod
    def _bucket(method: str, pattern: str) -> str:
        return hashlib.sha1(f"{method} {pattern}".encode(), usedforsecurity=False).hexdigest()[:32]

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        prefix = "/api/v" + request.match_info.get("version", "")
        path = "/" + request.match_info["tail"] if "version" in request.match_info else request.path
        record = RecordedRequest(method, path, query=dict(request.query))
        try:
            response = await self._answer(request, method, path, prefix, record)
        except Exception:
            self.errors.append(traceback.format_exc())
            # 503, not 500: discord.py retries a 500 four times, sleeping 1 s, 3 s…
            body = {"message": "503: the fake failed, see FakeDiscord.errors", "code": 0}
            response = _json_response(body, 503)
        record.status = response.status
        self.requests.append(record)
        await self._changed()
        return response

    async def _answer(
        self, request: web.Request, method: str, path: str, prefix: str, record: RecordedRequest
    ) -> web.Response:
        try:
            body, uploads = await self._read_body(request)
        except DiscordError as error:
            return error.response()
        record.json = copy.deepcopy(body)
        record.files = tuple(upload.filename for upload in uploads)
        failure = self._failure(method, path)
        if failure is not None:
            return failure
        route = None
        if prefix == "/api/v10":
            for route_method, pattern, handler, needs_auth in self._routes:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    route = (match, pattern, handler, needs_auth)
                    break
        if route is None:
            self.unknown_routes.append((method, request.path))
            return _json_response({"message": "404: Not Found", "code": 0}, 404)
        match, pattern, handler, needs_auth = route
        if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json_response({"message": "401: Unauthorized", "code": 0}, 401)
        params = {k: v for k, v in match.groupdict().items() if v is not None}
        call = _Call(method, path, params, request.query, body, uploads)
        try:
            result = await handler(call)
        except DiscordError as error:
            return error.response()
        headers = {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": self._bucket(method, pattern.pattern),
        }
        if result is None:
            return web.Response(status=204, headers=headers)
        return _json_response(result, 200, headers)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/media")
        self.cdn_requests.append(path)
        record = RecordedRequest(request.method, path, query=dict(request.query))
        response: web.Response | None = self._failure(request.method, path)
        if response is None:
            parts = path.split("/")
            found = (
                self._attachments.get(int(parts[3]))
                if len(parts) > 3 and parts[3].isdigit()
                else None
            )
            if found is None:
                response = web.Response(status=404, text="Not Found")
            else:
                attachment, data = found
                content_type = attachment.get("content_type") or "application/octet-stream"
                response = web.Response(body=data, headers={"Content-Type": content_type})
        record.status = response.status
        self.requests.append(record)
        await self._changed()
        return response

    # users, application, gateway

    async def _get_me(self, call: _Call) -> JSON:
        return self._me_payload()

    async def _get_user(self, call: _Call) -> JSON:
        user = self.users.get(call.int_param("user_id"))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return user.payload()

    async def _get_application(self, call: _Call) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self._application_flags(),
            "owner": self.app_owner.payload(),
            "team": None,
            "bot": self.bot_user.payload(),
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "approximate_guild_count": len(self.guilds),
        }

    async def _get_gateway(self, call: _Call) -> JSON:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, call: _Call) -> JSON:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    # application commands

    def _command_scope(self, call: _Call) -> int | None:
        if call.int_param("app_id") != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = call.params.get("guild_id")
        if guild_id is not None and int(guild_id) not in self.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return None if guild_id is None else int(guild_id)

    async def _get_commands(self, call: _Call) -> list[JSON]:
        return self.commands(self._command_scope(call))

    async def _put_commands(self, call: _Call) -> list[JSON]:
        guild_id = self._command_scope(call)
        if not isinstance(call.body, list):
            raise _form_error(
                "_root", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"
            )
        previous = {(c["name"], c["type"]): c for c in self._commands.get(guild_id, [])}
        seen: set[tuple[str, int]] = set()
        stored = []
        for index, command in enumerate(call.body):
            kind = int(command.get("type", 1))
            name = str(command.get("name", ""))
            self._validate_command(f"{index}", command, kind)
            if (name, kind) in seen:
                raise _form_error(f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", name)
            seen.add((name, kind))
            old = previous.get((name, kind))
            entry: JSON = {
                "id": old["id"] if old else str(_snowflake()),
                "application_id": str(self.application_id),
                "version": str(_snowflake()),
                "type": kind,
                "name": name,
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "options": copy.deepcopy(command.get("options", [])),
                "default_member_permissions": command.get("default_member_permissions"),
                "dm_permission": command.get("dm_permission", True),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types", [0]),
                "nsfw": command.get("nsfw", False),
            }
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        self._commands[guild_id] = stored
        return copy.deepcopy(stored)

    def _validate_command(self, path: str, command: JSON, kind: int) -> None:
        name = str(command.get("name", ""))
        if kind == 1:
            if not re.fullmatch(r"[-_'\w]{1,32}", name) or name != name.lower():
                raise _form_error(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", name)
            if not 1 <= len(str(command.get("description", ""))) <= 100:
                raise _form_error(f"{path}.description", "BASE_TYPE_BAD_LENGTH", "1-100")
        elif not 1 <= len(name) <= 32:
            raise _form_error(f"{path}.name", "BASE_TYPE_BAD_LENGTH", "1-32")
        options = command.get("options") or []
        if len(options) > 25:
            raise _form_error(f"{path}.options", "BASE_TYPE_MAX_LENGTH", "25 or fewer")
        for index, option in enumerate(options):
            if len(option.get("choices") or []) > 25:
                raise _form_error(f"{path}.options.{index}.choices", "BASE_TYPE_MAX_LENGTH", "25")
            self._validate_command(f"{path}.options.{index}", option, 1)

    # channels and messages

    async def _get_channel(self, call: _Call) -> JSON:
        return self._channel(call.int_param("channel_id")).payload()

    async def _list_messages(self, call: _Call) -> list[JSON]:
        channel = self._channel(call.int_param("channel_id"))
        limit = min(100, int(call.query.get("limit", "50")))
        visible = [
            self._messages[message_id]
            for message_id in self._channel_messages.get(channel.id, [])
            if not self._messages[message_id].deleted
            and not self._messages[message_id].payload["flags"] & EPHEMERAL
        ]
        before = int(call.query.get("before", "0")) or None
        after = int(call.query.get("after", "0")) or None
        if before is not None:
            visible = [m for m in visible if int(m.payload["id"]) < before]
        if after is not None:
            visible = [m for m in visible if int(m.payload["id"]) > after]
            chosen = visible[:limit]
        else:
            chosen = visible[-limit:]
        return [self._rest_message(m) for m in reversed(chosen)]

    async def _get_message(self, call: _Call) -> JSON:
        stored = self._stored(call.int_param("channel_id"), call.int_param("message_id"))
        return self._rest_message(stored)

    def _check_permission(self, channel: FakeChannel, needed: discord.Permissions) -> None:
        granted = self._permissions(self.guilds[channel.guild_id], self.bot_id, channel)
        if granted & needed.value != needed.value:
            raise DiscordError(403, 50013, "Missing Permissions")

    @staticmethod
    def _send_permission(channel: FakeChannel) -> discord.Permissions:
        if channel.is_thread:
            return discord.Permissions(send_messages_in_threads=True)
        return discord.Permissions(send_messages=True)

    def _validate_message(self, body: JSON, uploads: list[_Upload], *, editing: bool) -> None:
        content = body.get("content")
        if content is not None and len(str(content)) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for index, embed in enumerate(embeds):
            for key, limit in (("title", 256), ("description", 4096)):
                if len(str(embed.get(key) or "")) > limit:
                    raise _form_error(
                        f"embeds.{index}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            fields = embed.get("fields") or []
            if len(fields) > 25:
                raise _form_error(f"embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", "25")
            total += len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
            total += len(str((embed.get("footer") or {}).get("text") or ""))
            total += len(str((embed.get("author") or {}).get("name") or ""))
            total += sum(len(str(f.get("name", ""))) + len(str(f.get("value", ""))) for f in fields)
        if total > 6000:
            raise _form_error(
                "embeds", "MESSAGE_EMBED_SIZE", "Embed size exceeds maximum size of 6000"
            )
        for upload in uploads:
            if len(upload.data) > self.upload_limit:
                raise DiscordError(413, 40005, "Request entity too large")
        if not editing and not (
            content
            or embeds
            or uploads
            or body.get("attachments")
            or body.get("components")
            or body.get("sticker_ids")
            or body.get("poll")
        ):
            raise DiscordError(400, 50006, "Cannot send an empty message")

    def _merge_attachments(
        self, channel_id: int, body: JSON, uploads: list[_Upload], existing: list[JSON]
    ) -> list[JSON]:
        """The attachments a create or edit leaves: ``body["attachments"]`` lists the
        kept ones by id and the new ones by the index of their ``files[n]`` part."""
        by_index: dict[int, _Upload] = {}
        for position, upload in enumerate(uploads):
            found = re.fullmatch(r"files\[(\d+)\]", upload.field)
            by_index[int(found.group(1)) if found else position] = upload
        listed = body.get("attachments")
        if listed is None:
            return [*existing, *(self._upload(channel_id, u, None) for u in by_index.values())]
        current = {a["id"]: a for a in existing}
        result = []
        for item in listed:
            key = int(item["id"])
            if key in by_index:
                result.append(self._upload(channel_id, by_index.pop(key), item.get("description")))
            elif str(key) in current:
                result.append(current[str(key)])
        return result

    def _upload(self, channel_id: int, upload: _Upload, description: str | None) -> JSON:
        content_type = mimetypes.guess_type(upload.filename)[0]
        if content_type is not None and content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return self.add_attachment(
            upload.data,
            upload.filename,
            content_type,
            channel_id=channel_id,
            description=description,
        )

    def _message_flags(self, body: JSON, base: int = 0) -> int:
        return base | (int(body.get("flags") or 0) & _SETTABLE_FLAGS)

    async def _post_message(self, call: _Call) -> JSON:
        channel = self._channel(call.int_param("channel_id"))
        if channel.type not in _MESSAGEABLE_TYPES:
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        body = call.body or {}
        send = self._send_permission(channel)
        if call.uploads:
            send |= discord.Permissions(attach_files=True)
        if body.get("message_reference"):
            send |= discord.Permissions(read_message_history=True)
        self._check_permission(channel, send)
        self._validate_message(body, call.uploads, editing=False)
        stored = self._bot_message(channel, body, call.uploads)
        await self._dispatch_message("MESSAGE_CREATE", stored)
        return copy.deepcopy(stored.payload)

    def _bot_message(
        self,
        channel: FakeChannel,
        body: JSON,
        uploads: list[_Upload],
        *,
        interaction: FakeInteraction | None = None,
        message_type: int | None = None,
        flags: int = 0,
    ) -> _Stored:
        allowed = body.get("allowed_mentions")
        users, roles, everyone = self._parsed_mentions(str(body.get("content") or ""), allowed)
        reference = body.get("message_reference")
        if reference and (allowed is None or allowed.get("replied_user")):
            replied = self._messages.get(int(reference["message_id"]))
            if replied is not None and not replied.deleted:
                author = int(replied.payload["author"]["id"])
                if author not in users:
                    users.append(author)
        stored = self._new_message(
            channel,
            self.bot_id,
            body,
            attachments=self._merge_attachments(channel.id, body, uploads, []),
            embeds=copy.deepcopy(body.get("embeds") or []),
            mention_ids=users,
            role_ids=roles,
            everyone=everyone,
            message_type=message_type,
            flags=flags,
            webhook_id=None if interaction is None else self.application_id,
            interaction=interaction,
        )
        stored.allowed_mentions = copy.deepcopy(allowed)
        return stored

    def _edit(self, stored: _Stored, body: JSON, uploads: list[_Upload]) -> None:
        self._validate_message(body, uploads, editing=True)
        payload = stored.payload
        channel_id = int(payload["channel_id"])
        if "content" in body:
            payload["content"] = body["content"] or ""
            allowed = body.get("allowed_mentions", stored.allowed_mentions)
            users, roles, everyone = self._parsed_mentions(payload["content"], allowed)
            payload["mentions"] = [self.users[user_id].payload() for user_id in users]
            payload["mention_roles"] = [str(role) for role in roles]
            payload["mention_everyone"] = everyone
        if "allowed_mentions" in body:
            stored.allowed_mentions = copy.deepcopy(body["allowed_mentions"])
        if "embeds" in body:
            payload["embeds"] = copy.deepcopy(body["embeds"] or [])
        if "components" in body:
            payload["components"] = copy.deepcopy(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            keep = payload["flags"] & ~_SETTABLE_FLAGS & ~LOADING
            payload["flags"] = keep | (payload["flags"] & EPHEMERAL) | self._message_flags(body)
        else:
            payload["flags"] &= ~LOADING
        if "attachments" in body or uploads:
            payload["attachments"] = self._merge_attachments(
                channel_id, body, uploads, payload["attachments"]
            )
        if not (payload["content"] or payload["embeds"] or payload["attachments"]) and not (
            payload["components"] or payload.get("poll")
        ):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        payload["edited_timestamp"] = _now()
        stored.versions.append(copy.deepcopy(payload))

    async def _patch_message(self, call: _Call) -> JSON:
        stored = self._stored(call.int_param("channel_id"), call.int_param("message_id"))
        if int(stored.payload["author"]["id"]) != self.bot_id or "webhook_id" in stored.payload:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._edit(stored, call.body or {}, call.uploads)
        await self._dispatch_message("MESSAGE_UPDATE", stored)
        return copy.deepcopy(stored.payload)

    async def _delete_message(self, call: _Call) -> None:
        channel = self._channel(call.int_param("channel_id"))
        stored = self._stored(channel.id, call.int_param("message_id"))
        if int(stored.payload["author"]["id"]) != self.bot_id:
            self._check_permission(channel, discord.Permissions(manage_messages=True))
        await self._delete(stored)

    async def _delete(self, stored: _Stored) -> None:
        stored.deleted = True
        if stored.payload["flags"] & EPHEMERAL:
            return
        data = {"id": stored.payload["id"], "channel_id": stored.payload["channel_id"]}
        if stored.guild_id is not None:
            data["guild_id"] = str(stored.guild_id)
        await self._dispatch(
            "MESSAGE_DELETE",
            lambda s: data if s.intents & GUILD_MESSAGES else None,
            stored.guild_id,
        )

    async def _post_typing(self, call: _Call) -> None:
        channel = self._channel(call.int_param("channel_id"))
        self._check_permission(channel, self._send_permission(channel))
        self._typing[channel.id] = self._typing.get(channel.id, 0) + 1

    async def _post_thread(self, call: _Call) -> JSON:
        parent = self._channel(call.int_param("channel_id"))
        body = call.body or {}
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _form_error(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if parent.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        kind = PUBLIC_THREAD
        source = None
        if "message_id" in call.params:
            source = self._stored(parent.id, call.int_param("message_id"))
            if source.payload.get("thread"):
                raise DiscordError(
                    400, 160004, "A thread has already been created for this message"
                )
        else:
            kind = int(body.get("type") or PRIVATE_THREAD)
        needed = (
            discord.Permissions(create_public_threads=True)
            if kind == PUBLIC_THREAD
            else discord.Permissions(create_private_threads=True)
        )
        self._check_permission(parent, needed)
        # A thread started from a message has that message's id.
        thread_id = int(source.payload["id"]) if source is not None else _snowflake()
        thread = FakeChannel(
            thread_id,
            parent.guild_id,
            name,
            kind,
            parent_id=parent.id,
            owner_id=self.bot_id,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        self.channels[thread_id] = thread
        self.guilds[parent.guild_id].channel_ids.append(thread_id)
        payload = thread.payload()
        payload["member"] = {
            "id": str(thread_id),
            "user_id": str(self.bot_id),
            "join_timestamp": thread.created_at,
            "flags": 0,
        }
        await self._dispatch(
            "THREAD_CREATE", lambda s: {**payload, "newly_created": True}, parent.guild_id
        )
        if source is not None:
            source.payload["flags"] |= HAS_THREAD
            source.payload["thread"] = thread.payload()
            await self._dispatch_message("MESSAGE_UPDATE", source)
        return payload

    async def _put_reaction(self, call: _Call) -> None:
        stored = self._stored(call.int_param("channel_id"), call.int_param("message_id"))
        users = stored.reactions.setdefault(call.params["emoji"], [])
        if self.bot_id not in users:
            users.append(self.bot_id)

    async def _delete_reaction(self, call: _Call) -> None:
        stored = self._stored(call.int_param("channel_id"), call.int_param("message_id"))
        users = stored.reactions.get(call.params["emoji"], [])
        if self.bot_id in users:
            users.remove(self.bot_id)

    # guilds

    def _guild(self, call: _Call) -> FakeGuild:
        guild = self.guilds.get(call.int_param("guild_id"))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, call: _Call) -> JSON:
        guild = self._guild(call)
        return {**self._guild_payload(guild), "approximate_member_count": len(guild.members)}

    async def _get_guild_channels(self, call: _Call) -> list[JSON]:
        guild = self._guild(call)
        return [
            self.channels[c].payload() for c in guild.channel_ids if not self.channels[c].is_thread
        ]

    async def _get_roles(self, call: _Call) -> list[JSON]:
        return [role.payload() for role in self._guild(call).roles.values()]

    async def _list_members(self, call: _Call) -> list[JSON]:
        guild = self._guild(call)
        if not self.members_allowed:
            raise DiscordError(403, 50001, "Missing Access")
        limit = int(call.query.get("limit", "1"))
        after = int(call.query.get("after", "0"))
        ids = sorted(user_id for user_id in guild.members if user_id > after)[:limit]
        return [self._member_payload(guild, user_id) for user_id in ids]

    async def _get_member(self, call: _Call) -> JSON:
        guild = self._guild(call)
        user_id = call.int_param("user_id")
        if user_id not in guild.members:
            raise DiscordError(404, 10007, "Unknown Member")
        return self._member_payload(guild, user_id)

    # interactions

    async def _interact(
        self,
        kind: int,
        guild_id: int,
        channel_id: int,
        user_id: int,
        data: JSON,
        locale: str = "en-US",
        *,
        message: _Stored | None = None,
    ) -> FakeInteraction:
        guild = self.guilds[guild_id]
        channel = self._channel(channel_id)
        if user_id not in guild.members:
            raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
        user_permissions = self._permissions(guild, user_id, channel)
        interaction_id = _snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": {**channel.payload(), "permissions": str(user_permissions)},
            "member": {
                **self._member_payload(guild, user_id),
                "permissions": str(user_permissions),
            },
            "token": token,
            "version": 1,
            "app_permissions": str(self._permissions(guild, self.bot_id, channel)),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": self.upload_limit,
        }
        if message is not None:
            payload["message"] = {**copy.deepcopy(message.payload), "guild_id": str(guild_id)}
        interaction = FakeInteraction(
            self,
            interaction_id,
            token,
            kind,
            guild_id,
            channel_id,
            user_id,
            payload,
            asyncio.get_running_loop().time(),
            message_id=None if message is None else int(message.payload["id"]),
        )
        self.interactions[interaction_id] = interaction
        self._interactions_by_token[token] = interaction
        await self._dispatch("INTERACTION_CREATE", lambda s: copy.deepcopy(payload), guild_id)
        return interaction

    def _command_data(
        self,
        guild_id: int,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        focused: str | None,
    ) -> JSON:
        parts = name.split()
        command = next(
            (
                c
                for c in self._commands.get(guild_id, [])
                if c["name"] == parts[0] and c["type"] == 1
            ),
            None,
        )
        if command is None:
            command = next(
                (
                    c
                    for c in self._commands.get(None, [])
                    if c["name"] == parts[0] and c["type"] == 1
                ),
                None,
            )
        schema: list[JSON] = [] if command is None else command.get("options", [])
        chain = []
        for depth, sub in enumerate(parts[1:]):
            spec = next((o for o in schema if o.get("name") == sub), None)
            default_type = 1 if depth == len(parts) - 2 else 2
            chain.append((sub, default_type if spec is None else int(spec["type"])))
            schema = [] if spec is None else spec.get("options", [])
        resolved: JSON = {}
        built = self._options(guild_id, schema, options, resolved, focused)
        for sub, sub_type in reversed(chain):
            built = [{"name": sub, "type": sub_type, "options": built}]
        data: JSON = {
            "id": command["id"] if command else str(_snowflake()),
            "name": parts[0],
            "type": 1,
            "options": built,
        }
        if resolved:
            data["resolved"] = resolved
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    def _options(
        self,
        guild_id: int,
        schema: list[JSON],
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        resolved: JSON,
        focused: str | None,
    ) -> list[JSON]:
        if isinstance(options, Mapping):
            given = [(name, value, None) for name, value in options.items()]
        else:
            given = [(o["name"], o.get("value"), o.get("type")) for o in options]
        built = []
        for name, value, explicit in given:
            spec = next((o for o in schema if o.get("name") == name), None)
            kind = explicit or (int(spec["type"]) if spec else self._guess_type(value))
            option: JSON = {
                "name": name,
                "type": kind,
                "value": self._resolve(guild_id, kind, value, resolved),
            }
            if name == focused:
                option["focused"] = True
            built.append(option)
        return built

    @staticmethod
    def _guess_type(value: Any) -> int:
        if isinstance(value, bool):
            return 5
        if isinstance(value, int):
            return 4
        if isinstance(value, float):
            return 10
        if isinstance(value, Mapping) and "filename" in value:
            return 11
        return 3

    def _resolve(self, guild_id: int, kind: int, value: Any, resolved: JSON) -> Any:
        guild = self.guilds[guild_id]
        if kind == 11:
            attachment = value if isinstance(value, Mapping) else self._attachments[int(value)][0]
            resolved.setdefault("attachments", {})[str(attachment["id"])] = copy.deepcopy(
                dict(attachment)
            )
            return str(attachment["id"])
        if kind == 9:
            kind = 8 if int(value) in guild.roles else 6
        if kind == 6:
            user_id = int(value)
            resolved.setdefault("users", {})[str(user_id)] = self.users[user_id].payload()
            if user_id in guild.members:
                member = self._member_payload(guild, user_id, with_user=False)
                member["permissions"] = str(self._permissions(guild, user_id, None))
                resolved.setdefault("members", {})[str(user_id)] = member
            return str(user_id)
        if kind == 7:
            channel = self.channels[int(value)]
            resolved.setdefault("channels", {})[str(channel.id)] = {
                **channel.payload(),
                "permissions": str(self._permissions(guild, self.bot_id, channel)),
            }
            return str(channel.id)
        if kind == 8:
            role = guild.roles[int(value)]
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            return str(role.id)
        return value

    def _interaction(self, token: str, app_id: int | None = None) -> FakeInteraction:
        interaction = self._interactions_by_token.get(token)
        if interaction is None or (app_id is not None and app_id != self.application_id):
            raise DiscordError(404, 10015, "Unknown Webhook")
        return interaction

    async def _post_callback(self, call: _Call) -> JSON | None:
        interaction = self.interactions.get(call.int_param("interaction_id"))
        if interaction is None or interaction.token != call.params["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        elapsed = asyncio.get_running_loop().time() - interaction.dispatched_at
        if self.ack_deadline is not None and elapsed > self.ack_deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        if interaction.callbacks:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        interaction.answered_at = asyncio.get_running_loop().time()
        body = call.body or {}
        kind = int(body.get("type", 0))
        data = body.get("data")
        allowed = {
            APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
            MESSAGE_COMPONENT: {
                CHANNEL_MESSAGE,
                DEFERRED_CHANNEL_MESSAGE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
                MODAL,
            },
            AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
            MODAL_SUBMIT: {
                CHANNEL_MESSAGE,
                DEFERRED_CHANNEL_MESSAGE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
            },
        }[interaction.type]
        if kind not in allowed:
            raise _form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID", f"type {kind}")
        channel = self._channel(interaction.channel_id)
        message: _Stored | None = None
        message_type = CHAT_INPUT_COMMAND if interaction.type == APPLICATION_COMMAND else None
        if kind == CHANNEL_MESSAGE:
            self._validate_message(data or {}, call.uploads, editing=False)
            message = self._bot_message(
                channel,
                data or {},
                call.uploads,
                interaction=interaction,
                message_type=message_type,
                flags=self._message_flags(data or {}),
            )
            interaction.original_id = int(message.payload["id"])
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif kind == DEFERRED_CHANNEL_MESSAGE:
            flags = LOADING | (int((data or {}).get("flags") or 0) & EPHEMERAL)
            message = self._new_message(
                channel,
                self.bot_id,
                {},
                attachments=[],
                embeds=[],
                mention_ids=[],
                role_ids=[],
                message_type=message_type,
                flags=flags,
                webhook_id=self.application_id,
                interaction=interaction,
            )
            interaction.original_id = int(message.payload["id"])
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and interaction.message_id:
            interaction.original_id = interaction.message_id
            if kind == UPDATE_MESSAGE:
                message = self._messages[interaction.message_id]
                self._edit(message, data or {}, call.uploads)
                await self._dispatch_message("MESSAGE_UPDATE", message)
        elif kind == AUTOCOMPLETE_RESULT:
            choices = (data or {}).get("choices") or []
            if len(choices) > 25:
                raise _form_error("data.choices", "BASE_TYPE_MAX_LENGTH", "25 or fewer")
            for index, choice in enumerate(choices):
                if not 1 <= len(str(choice.get("name", ""))) <= 100:
                    raise _form_error(f"data.choices.{index}.name", "BASE_TYPE_BAD_LENGTH", "1-100")
        interaction.callbacks.append(
            {
                "type": kind,
                "data": copy.deepcopy(data),
                "files": [upload.filename for upload in call.uploads],
            }
        )
        if call.query.get("with_response") not in ("1", "true", "True"):
            return None
        original = (
            None if interaction.original_id is None else self._messages[interaction.original_id]
        )
        answer: JSON = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(
                    original is not None and original.payload["flags"] & EPHEMERAL
                ),
            },
            "resource": {"type": kind},
        }
        if original is not None:
            answer["interaction"]["response_message_id"] = original.payload["id"]
            answer["resource"]["message"] = copy.deepcopy(original.payload)
        return answer

    async def _post_followup(self, call: _Call) -> JSON | None:
        interaction = self._interaction(call.params["token"], call.int_param("app_id"))
        if not interaction.callbacks:
            raise DiscordError(404, 10015, "Unknown Webhook")
        body = call.body or {}
        self._validate_message(body, call.uploads, editing=False)
        original = (
            None if interaction.original_id is None else self._messages[interaction.original_id]
        )
        if original is not None and original.payload["flags"] & LOADING:
            # The first follow-up after a deferred response replaces the "thinking"
            # message; its ephemeral flag was decided by the defer.
            self._edit(original, body, call.uploads)
            stored = original
            await self._dispatch_message("MESSAGE_UPDATE", stored)
        else:
            stored = self._bot_message(
                self._channel(interaction.channel_id),
                body,
                call.uploads,
                interaction=interaction,
                flags=self._message_flags(body),
            )
            await self._dispatch_message("MESSAGE_CREATE", stored)
        interaction.followup_ids.append(int(stored.payload["id"]))
        if call.query.get("wait") in ("1", "true", "True"):
            return copy.deepcopy(stored.payload)
        return None

    def _webhook_message(self, call: _Call) -> tuple[FakeInteraction, _Stored]:
        interaction = self._interaction(call.params["token"], call.int_param("app_id"))
        wanted = call.params["message_id"]
        if wanted == "@original":
            message_id = interaction.original_id
        else:
            message_id = int(wanted)
            if message_id not in (interaction.original_id, *interaction.followup_ids):
                message_id = None
        stored = None if message_id is None else self._messages.get(message_id)
        if stored is None or stored.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return interaction, stored

    async def _get_webhook_message(self, call: _Call) -> JSON:
        return copy.deepcopy(self._webhook_message(call)[1].payload)

    async def _patch_webhook_message(self, call: _Call) -> JSON:
        _, stored = self._webhook_message(call)
        self._edit(stored, call.body or {}, call.uploads)
        await self._dispatch_message("MESSAGE_UPDATE", stored)
        return copy.deepcopy(stored.payload)

    async def _delete_webhook_message(self, call: _Call) -> None:
        _, stored = self._webhook_message(call)
        await self._delete(stored)


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A running :class:`FakeDiscord` that discord.py is pointed at, for one test."""
    async with FakeDiscord() as fake:
        with fake.patch_client():
            yield fake

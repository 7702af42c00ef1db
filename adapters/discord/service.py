"""The Discord adapter as ``archivist run`` sees it: run until closed, report readiness."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord.bot import ArchivistBot, ShardedArchivistBot
from adapters.discord.options import DiscordOptions
from adapters.failures import UNREACHABLE, unreachable_reason
from agent.core import ArchivistError, Core

log = logging.getLogger(__name__)

# The core has finished or refused every turn by the time the adapter closes; what is left
# is sending the replies, which takes a few round trips (more if Discord rate-limits).
_DELIVERY_TIMEOUT = 10.0
# A client retired after a failure: how long its answers under way may take to be sent.
_RETIRE_TIMEOUT = 300.0


class DiscordUnavailable(ArchivistError):
    """Discord refused the bot or cannot be reached; the message says what to fix."""


def point_at(api_base_url: str | None, gateway_url: str | None) -> None:
    """Send REST calls and the gateway connection somewhere other than Discord's own.

    discord.py reads both from class attributes, so this applies to the whole process.
    """
    if api_base_url:
        discord.http.Route.BASE = api_base_url.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


# Gateway close codes discord.py does not reconnect after, and what they mean.
_CLOSE_CODES = {
    4004: "authentication failed",
    4010: "invalid shard",
    4011: "sharding required",
    4012: "invalid API version",
    4013: "invalid intents",
}


def _closed_for_good(code: int) -> str:
    said = f"Discord closed the gateway connection ({code}, {_CLOSE_CODES.get(code, 'final')})"
    if code == 4004:
        return (
            f"{said}: copy the token again from the developer portal (Bot → Reset Token)"
            " into DISCORD_TOKEN."
        )
    return f"{said}."


class ReconnectsInASentence(logging.Filter):
    """discord.py logs each failed reconnect with its traceback: one sentence instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite "Attempting a reconnect" records in place; never drops one."""
        if record.msg != "Attempting a reconnect in %.2fs" or not record.exc_info:
            return True
        error = record.exc_info[1]
        if isinstance(error, aiohttp.ClientResponseError):
            why = f"the gateway answered HTTP {error.status}"
        elif isinstance(error, discord.ConnectionClosed):
            why = f"the gateway closed the connection with {error.code}"
        else:
            why = unreachable_reason(error) if error is not None else "unknown"
        record.msg = f"Discord is unreachable ({why}): reconnecting in %.1f s"
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True


_RECONNECTS = ReconnectsInASentence()


class DiscordAdapter:
    """Connects one bot to Discord and serves every guild it is in.

    :meth:`run` may be called again after it raised: discord.py's client cannot be reopened
    reliably, so each run after the first starts a new one; the old one gets its answers
    under way out before it closes.
    """

    name = "discord"

    def __init__(
        self, core: Core, options: DiscordOptions, *, guild_ready_timeout: float = 2.0
    ) -> None:
        self._core = core
        self._options = options
        self._guild_ready_timeout = guild_ready_timeout
        logging.getLogger("discord.client").addFilter(_RECONNECTS)  # once: the same filter
        self.bot = self._new_bot()
        self._used = False
        self._serving = asyncio.Event()
        self._retiring: set[asyncio.Task[None]] = set()
        self._closing = False

    def _new_bot(self) -> ArchivistBot:
        options = self._options
        if options.shard_count is None:
            return ArchivistBot(self._core, options, guild_ready_timeout=self._guild_ready_timeout)
        return ShardedArchivistBot(
            self._core,
            options,
            guild_ready_timeout=self._guild_ready_timeout,
            shard_count=options.shard_count,
            shard_ids=list(options.shard_ids) or None,
        )

    async def run(self) -> None:
        """Log in, sync commands and serve until :meth:`close`; reconnects are discord.py's.

        Raises :class:`DiscordUnavailable` with the fix when Discord refuses the bot or cannot
        be reached; anything else that ends the connection propagates as it is.
        """
        point_at(self._options.api_base_url, self._options.gateway_url)
        if self._used:
            self.bot = self._new_bot()
        self._used = True
        self._serving.clear()
        bot = self.bot
        ready: asyncio.Task[None] | None = None
        try:
            await bot.login(self._options.token)
            ready = asyncio.create_task(self._mark_serving(bot))
            await bot.connect(reconnect=True)
        except discord.LoginFailure as exc:
            raise DiscordUnavailable(
                "Discord rejected the bot token: copy it again from the developer portal"
                " (Bot → Reset Token) into DISCORD_TOKEN."
            ) from exc
        except discord.PrivilegedIntentsRequired as exc:
            raise DiscordUnavailable(
                "Discord refused the Message Content intent: turn on 'Message Content Intent'"
                " under Bot → Privileged Gateway Intents in the developer portal, then restart."
            ) from exc
        except discord.ConnectionClosed as exc:
            raise DiscordUnavailable(_closed_for_good(exc.code)) from exc
        except UNREACHABLE as exc:
            host = urlsplit(discord.http.Route.BASE).hostname
            raise DiscordUnavailable(
                f"Cannot reach Discord at {host} ({unreachable_reason(exc)}): check the network,"
                " or [discord] api_base_url."
            ) from exc
        finally:
            if ready is not None:
                ready.cancel()
            if bot.is_ready():  # also when it failed before _mark_serving could run
                self._serving.set()
            if not self._closing:
                self._retire(bot)

    async def _mark_serving(self, bot: ArchivistBot) -> None:
        await bot.wait_until_ready()
        self._serving.set()

    def _retire(self, bot: ArchivistBot) -> None:
        """Close a client that failed, once its answers under way are sent (in the background)."""

        async def retire() -> None:
            if bot.ws is not None and bot.ws.open:  # no more events to this client
                await bot.ws.close(code=1000)
            await bot.finish_handling(_RETIRE_TIMEOUT)
            await bot.close()

        task = asyncio.create_task(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def wait_until_serving(self) -> None:
        """Return once connected with every guild loaded (in the current run)."""
        await self._serving.wait()

    def serving(self) -> bool:
        """Whether the current (or, once it stopped, the last) run got connected."""
        return self._serving.is_set()

    async def wait_until_ready(self) -> None:
        """Return once connected with every guild loaded (the first time)."""
        await self.wait_until_serving()

    async def ready(self) -> None:
        """Raise unless connected to the gateway with guilds loaded."""
        if self.bot.is_closed() or not self.bot.is_ready():
            raise DiscordUnavailable("Not connected to Discord (yet): see the bot's log.")

    async def close(self) -> None:
        """Let answers already produced reach Discord, then disconnect."""
        self._closing = True
        await self.bot.finish_handling(_DELIVERY_TIMEOUT)
        await self.bot.close()
        if self._retiring:
            await asyncio.wait(self._retiring, timeout=_DELIVERY_TIMEOUT)

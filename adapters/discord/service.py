"""The Discord adapter as ``archivist run`` sees it: run until closed, report readiness."""

from __future__ import annotations

import asyncio
import logging

import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord.bot import ArchivistBot
from adapters.discord.options import DiscordOptions
from agent.core import ArchivistError, Core

log = logging.getLogger(__name__)

# The core has finished or refused every turn by the time the adapter closes; what is left
# is sending the replies, which takes a few round trips (more if Discord rate-limits).
_DELIVERY_TIMEOUT = 10.0


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


class DiscordAdapter:
    """Connects one bot to Discord and serves every guild it is in."""

    name = "discord"

    def __init__(
        self, core: Core, options: DiscordOptions, *, guild_ready_timeout: float = 2.0
    ) -> None:
        self._options = options
        self.bot = ArchivistBot(core, options, guild_ready_timeout=guild_ready_timeout)
        self._logged_in = asyncio.Event()

    async def run(self) -> None:
        """Log in, sync commands and serve until :meth:`close`; reconnects are discord.py's.

        Raises :class:`DiscordUnavailable` with the fix when Discord refuses the bot.
        """
        point_at(self._options.api_base_url, self._options.gateway_url)
        try:
            await self.bot.login(self._options.token)
            self._logged_in.set()
            await self.bot.connect(reconnect=True)
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

    async def wait_until_ready(self) -> None:
        """Return once connected with every guild loaded (the first time)."""
        await self._logged_in.wait()  # discord.py's own wait needs a logged-in client
        await self.bot.wait_until_ready()

    async def ready(self) -> None:
        """Raise unless connected to the gateway with guilds loaded."""
        if self.bot.is_closed() or not self.bot.is_ready():
            raise DiscordUnavailable("Not connected to Discord (yet): see the bot's log.")

    async def close(self) -> None:
        """Let answers already produced reach Discord, then disconnect."""
        await self.bot.finish_handling(_DELIVERY_TIMEOUT)
        await self.bot.close()

"""The discord.py client: routes messages to the cogs and runs the slash-command tree."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.chat import EMPTY_QUESTION, ChatCog, mention_removed
from adapters.discord.interactions import on_app_command_error
from adapters.discord.options import DiscordOptions
from adapters.discord.places import place_of
from adapters.discord.replying import reply_to
from adapters.discord.sources import SourcesCog
from adapters.discord.uploads import is_pdf
from adapters.failures import sentence_for
from adapters.loading import shared_with
from adapters.policy import reads_uploads
from agent.core import Core

log = logging.getLogger(__name__)

NOT_IN_DMS = "I work in server channels: mention me in one."


class ArchivistBot(commands.Bot):
    """One bot for every guild it is in; each channel has its own agent in the core."""

    def __init__(self, core: Core, options: DiscordOptions, **client_options: object) -> None:
        intents = discord.Intents.default()
        # Privileged: without it the bot cannot see uploads or text unless mentioned.
        intents.message_content = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            # Answers quote documents and people: they must never ping anyone.
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=_Tree,
            **client_options,  # type: ignore[arg-type]
        )
        self.core = core
        self.options = options
        self._handling: set[asyncio.Task[object]] = set()
        self._chat = ChatCog(core, options)
        self._sources = SourcesCog(core, options)

    async def setup_hook(self) -> None:
        """Add the cogs and sync slash commands (to the dev guild only, when one is set)."""
        await self.add_cog(self._chat)
        await self.add_cog(self._sources)
        self.tree.error(on_app_command_error)
        if self.options.dev_guild_id is not None:
            guild = discord.Object(id=self.options.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def on_ready(self) -> None:
        """Log who we are and where (also after a full reconnect)."""
        log.info("connected to Discord as %s in %d guilds", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        """Route a message: PDFs to loading, mentions to the agent, the rest nowhere.

        Each message once, also when it is delivered again after a restart. There are no
        prefix commands, so nothing else reads messages.
        """
        if not self._should_read(message):
            return
        self.track()
        await self._route(message)

    def track(self) -> None:
        """Count the running handler (a message's or a command's) as work shutdown awaits."""
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def finish_handling(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for messages and commands being handled to get their
        answers out."""
        current = asyncio.current_task()
        pending = {t for t in self._handling if t is not current}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _route(self, message: discord.Message) -> None:
        assert self.user is not None
        mentioned = self.user in message.mentions
        uploads = [a for a in message.attachments if is_pdf(a)]
        loads = bool(uploads) and reads_uploads(self.options.ingest_uploads, addressed=mentioned)
        if not loads and not mentioned:
            return
        try:
            if await self._first_delivery(message):
                await self._handle(message, mentioned=mentioned, loads=loads)
        except Exception as exc:  # every failure gets its sentence in the channel
            sentence = sentence_for(exc, f"message {message.id} in {message.channel.id}")
            try:
                await reply_to(message, f"⚠️ {sentence}")
            except discord.HTTPException:
                log.warning("could not report a failure in %s", message.channel.id, exc_info=True)

    async def _handle(self, message: discord.Message, *, mentioned: bool, loads: bool) -> None:
        assert self.user is not None
        place = place_of(message.channel)
        if place is None:
            await reply_to(message, NOT_IN_DMS)
            return
        text = mention_removed(message.content, self.user.id)
        if loads:
            # The files first: a question asked with them is about them.
            name, question = shared_with(text)
            await self._sources.load_uploads(message, place, name, addressed=mentioned)
            if mentioned and question:
                await self._chat.answer(message, place, question)
        elif not text:
            await reply_to(message, EMPTY_QUESTION)
        else:
            await self._chat.answer(message, place, text)

    async def _first_delivery(self, message: discord.Message) -> bool:
        """Whether the message is new to us: a resumed session is sent again what we may have
        handled already, also before a restart, so the claim is kept in the core's database."""
        if await self.core.first_delivery(f"discord:message:{message.id}"):
            return True
        log.info("message %s in %s already handled", message.id, message.channel.id)
        return False

    def _should_read(self, message: discord.Message) -> bool:
        if message.author == self.user:
            return False
        return not message.author.bot or self.options.respond_to_bots


class ShardedArchivistBot(ArchivistBot, commands.AutoShardedBot):
    """The same bot running some shards of a sharded application: Discord sends each of them
    only the guilds whose ``(guild_id >> 22) % shard_count`` is its id."""


class _Tree(app_commands.CommandTree[ArchivistBot]):
    """The command tree, each command's handler counted as work that shutdown waits for."""

    async def interaction_check(self, interaction: discord.Interaction[ArchivistBot]) -> bool:
        """Runs in the command's own task, before the command: track that task."""
        self.client.track()
        return True

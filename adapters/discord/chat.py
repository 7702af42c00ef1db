"""Talking to a channel's agent: mentions, and /memory, /search, /reset."""

from __future__ import annotations

import asyncio
import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.access import require, require_of_author
from adapters.discord.options import DiscordOptions
from adapters.discord.places import Place, interaction_place
from adapters.discord.render import reply_text, split_message
from adapters.discord.replying import reply_to
from adapters.discord.views import ask_to_confirm
from adapters.live import LiveMessage
from adapters.policy import Action
from agent.core import Core, Incoming, Reply

log = logging.getLogger(__name__)

# Discord shows "typing" for about 10 s after each trigger.
_TYPING_EVERY = 8.0
# Seconds between edits of a reply being written: within Discord's 5 edits per 5 s.
_EDIT_EVERY = 1.5
_MESSAGE_CHARS = 2000
_THREAD_NAME_CHARS = 90
_UNKNOWN_MESSAGE = 10008
EMPTY_QUESTION = "Ask me something after the mention, e.g. `@Archivist what does chapter 3 say?`"


_OUTSIDE_SERVER = "I work in server channels: use this command in one."


class ChatCog(commands.Cog, name="Chat"):
    """Questions to the channel's agent and a look at its memory."""

    def __init__(self, core: Core, options: DiscordOptions) -> None:
        self._core = core
        self._options = options

    async def answer(self, message: discord.Message, place: Place, text: str) -> None:
        """Answer a mention: typing while the agent works, then the reply, split to fit.

        The turn is queued before anything waits on Discord, so a channel's questions are
        answered in the order they arrived (asking is open: the check below never waits).
        """
        await require_of_author(message, Action.ASK, self._options.manager_roles)
        answer = _Answer(message, text, in_thread=self._options.reply_in_thread)
        # The reply appears as the model writes it, in the message that will hold it.
        live = LiveMessage(answer.send, _edit, every=_EDIT_EVERY, limit=_MESSAGE_CHARS)
        turn = asyncio.create_task(
            self._core.ask(
                Incoming(
                    place.conversation,
                    place.scope,
                    text,
                    speaker_id=f"discord:{message.author.id}",
                    speaker_name=message.author.display_name,
                    on_partial=live,
                )
            )
        )
        typing = asyncio.create_task(_keep_typing(message.channel, turn))
        try:
            reply = await turn
        finally:
            typing.cancel()
            preview = await live.finish()
        pieces = split_message(reply_text(reply, show_thoughts=self._options.show_thoughts))
        if preview is not None and pieces:
            try:
                await _edit(preview, pieces[0])
                pieces = pieces[1:]
            except discord.NotFound:
                log.info("reply preview %s was deleted: sending the reply anew", preview.id)
        for piece in pieces:
            await answer.send(piece)

    @app_commands.command(name="memory", description="What this channel's agent remembers.")
    @app_commands.guild_only()
    async def memory(self, interaction: discord.Interaction) -> None:
        """Core memory and memory sizes of this channel's agent, privately."""
        await require(interaction, Action.SHOW_MEMORY, self._options.manager_roles)
        view = await self._core.memory(interaction_place(interaction, _OUTSIDE_SERVER).conversation)
        sources = ", ".join(view.sources) or "none attached"
        text = (
            f"```\n{view.core[:1700]}\n```\n{view.messages} messages;"
            f" {view.passages} passages in archival memory ({sources})."
        )
        await interaction.response.send_message(text[:2000], ephemeral=True)

    @app_commands.command(name="search", description="Search this channel's sources directly.")
    @app_commands.describe(query="What to look for")
    @app_commands.guild_only()
    async def search(self, interaction: discord.Interaction, query: str) -> None:
        """The best passages of the attached sources, with citations, privately."""
        await require(interaction, Action.SEARCH, self._options.manager_roles)
        place = interaction_place(interaction, _OUTSIDE_SERVER)
        await interaction.response.defer(ephemeral=True, thinking=True)
        found = await self._core.search(place.conversation, query)
        if not found.results:
            text = "No results: is a source attached here? (/sources)"
        else:
            lines = [
                f"**[{r.rank}] {r.citation}** {' '.join(r.text.split())[:300]}"
                for r in found.results
            ]
            text = "\n".join(lines) + f"\n-# {found.total} passages searched"
        await interaction.followup.send(split_message(text)[0], ephemeral=True)

    @app_commands.command(name="reset", description="Forget this channel's conversation.")
    @app_commands.guild_only()
    async def reset(self, interaction: discord.Interaction) -> None:
        """Ask for confirmation, then forget the conversation; sources stay attached."""
        await require(interaction, Action.RESET, self._options.manager_roles)
        place = interaction_place(interaction, _OUTSIDE_SERVER)

        async def confirmed(pressed: discord.Interaction) -> None:
            await pressed.response.defer()
            forgotten = await self._core.reset(place.conversation)
            await pressed.edit_original_response(
                content=f"Forgot {forgotten} messages; sources stay attached.", view=None
            )

        await ask_to_confirm(
            interaction,
            "Forget this channel's conversation? Core memory and sources stay.",
            confirmed,
            timeout=self._options.confirm_timeout,
        )


class _Answer:
    """Where a mention's answer goes: a thread started from the question, or a reply to it
    followed by messages in the channel."""

    def __init__(self, message: discord.Message, question: str, *, in_thread: bool) -> None:
        self._message = message
        self._question = question
        self._in_thread = in_thread and not isinstance(message.channel, discord.Thread)
        self._target: discord.abc.Messageable | None = None

    async def send(self, text: str) -> discord.Message:
        """Send one message of the answer (at most 2,000 characters)."""
        if self._target is None:
            thread = await _thread_from(self._message, self._question) if self._in_thread else None
            self._target = thread or self._message.channel
            if thread is None:
                return await reply_to(self._message, text)
        return await self._target.send(text)


async def _edit(message: discord.Message, text: str) -> None:
    # The client's allowed mentions (none) apply to edits too: an edit pings no one.
    await message.edit(content=text)


async def _keep_typing(channel: discord.abc.Messageable, turn: asyncio.Task[Reply]) -> None:
    """Show "typing" until the turn ends; a failed trigger only stops the indicator."""
    try:
        while not turn.done():
            await channel.typing()
            await asyncio.wait({turn}, timeout=_TYPING_EVERY)
    except discord.HTTPException as exc:
        log.info("typing indicator failed: %s", exc)


async def _thread_from(message: discord.Message, question: str) -> discord.Thread | None:
    """A thread started from the question; None if the question was deleted meanwhile."""
    try:
        return await message.create_thread(name=_thread_name(question))
    except discord.NotFound as exc:
        if exc.code != _UNKNOWN_MESSAGE:
            raise
        return None


def _thread_name(question: str) -> str:
    words = " ".join(question.split())
    return (
        (words[: _THREAD_NAME_CHARS - 1] + "…")
        if len(words) > _THREAD_NAME_CHARS
        else words or "Answer"
    )


def mention_removed(content: str, bot_id: int) -> str:
    """The message text without the bot's mention(s)."""
    return re.sub(rf"<@!?{bot_id}>", " ", content).strip()

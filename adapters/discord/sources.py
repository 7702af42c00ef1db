"""Sources in a guild: PDF uploads and /load, /attach, /detach, /sources, /forget-source."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.access import require, standing
from adapters.discord.options import DiscordOptions
from adapters.discord.places import Place, interaction_place, place_of
from adapters.discord.replying import reply_to
from adapters.discord.uploads import Uploads, is_pdf
from adapters.discord.views import ask_to_confirm
from adapters.loading import source_name
from adapters.policy import Action, UploadAnswer, refusal, upload_answer
from adapters.progress import ThrottledEdit
from agent.core import ArchivistError, Core

log = logging.getLogger(__name__)

# Discord shows at most 25 autocomplete choices.
_CHOICES = 25


_OUTSIDE_SERVER = "Sources belong to servers: use this command in a server channel."


class SourcesCog(commands.Cog, name="Sources"):
    """Loading, attaching and listing the documents a guild's agents can read."""

    def __init__(self, core: Core, options: DiscordOptions) -> None:
        self._core = core
        self._options = options
        self._uploads = Uploads(core, max_bytes=options.max_upload_bytes)

    async def load_uploads(
        self, message: discord.Message, place: Place, name: str | None, *, addressed: bool
    ) -> None:
        """Load a message's PDFs one after another, each with its own progress message, into
        the source ``name`` (each file's own name when None).

        Who may load, and what anyone else hears, is :func:`adapters.policy.upload_answer`'s.
        """
        found = standing(message.author, message.channel, self._options.manager_roles)
        answer = upload_answer(found, addressed=addressed)
        if answer is UploadAnswer.REFUSE:
            await reply_to(message, str(refusal(found)))
        if answer is not UploadAnswer.LOAD:
            return
        for attachment in (a for a in message.attachments if is_pdf(a)):
            status = await reply_to(message, f"Loading {attachment.filename}…")
            show = ThrottledEdit(_editor(status), interval=self._options.progress_interval)
            line = await self._loaded_or_why(
                place,
                attachment,
                source_name(attachment.filename, name),
                by=f"discord:{message.author.id}",
                origin=message.jump_url,
                show=show,
            )
            await show.finish(line)

    async def _loaded_or_why(
        self,
        place: Place,
        attachment: discord.Attachment,
        name: str,
        *,
        by: str,
        origin: str | None,
        show: ThrottledEdit,
    ) -> str:
        try:
            return await self._uploads.load(
                place, attachment, name, by=by, origin=origin, show=show
            )
        except ArchivistError as exc:
            log.warning("loading %s in %s failed: %s", attachment.filename, place.scope, exc)
            return str(exc)

    @app_commands.command(name="load", description="Load a PDF into a source and attach it here.")
    @app_commands.describe(file="The PDF to load", name="Source name (default: the file name)")
    @app_commands.guild_only()
    async def load(
        self, interaction: discord.Interaction, file: discord.Attachment, name: str | None = None
    ) -> None:
        """Load an attached PDF, editing the deferred answer with progress."""
        await require(interaction, Action.LOAD, self._options.manager_roles)
        place = interaction_place(interaction, _OUTSIDE_SERVER)
        if not is_pdf(file):
            raise ArchivistError(f"{file.filename} is not a PDF: only PDF files can be loaded.")
        await interaction.response.defer(thinking=True)
        show = ThrottledEdit(
            lambda t: interaction.edit_original_response(content=t),
            interval=self._options.progress_interval,
        )
        line = await self._loaded_or_why(
            place,
            file,
            source_name(file.filename, name),
            by=f"discord:{interaction.user.id}",
            # A command's file has no message to link to, and CDN links expire within a day.
            origin=None,
            show=show,
        )
        try:
            await show.finish(line)
        except discord.HTTPException:
            # The interaction's token lasts 15 minutes; a longer load reports in the channel.
            await place.channel.send(line)  # type: ignore[union-attr]

    @app_commands.command(name="attach", description="Let this channel's agent read a source.")
    @app_commands.describe(source="A source of this server")
    @app_commands.guild_only()
    async def attach(self, interaction: discord.Interaction, source: str) -> None:
        """Attach a guild source to this channel's agent."""
        await require(interaction, Action.ATTACH, self._options.manager_roles)
        place = interaction_place(interaction, _OUTSIDE_SERVER)
        found, new = await self._core.attach(
            place.conversation, place.scope, source, by=f"discord:{interaction.user.id}"
        )
        channel = getattr(place.channel, "mention", "this channel")
        await interaction.response.send_message(
            f"Attached {found.name} to {channel}." if new else f"{found.name} was already attached."
        )

    @attach.autocomplete("source")
    async def _attach_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._guild_choices(interaction, current)

    async def _guild_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        place = place_of(interaction.channel)
        if place is None:
            return []
        return _choices([s.name for s in await self._core.sources(place.scope)], current)

    @app_commands.command(name="detach", description="Stop this channel's agent reading a source.")
    @app_commands.describe(source="A source attached here")
    @app_commands.guild_only()
    async def detach(self, interaction: discord.Interaction, source: str) -> None:
        """Detach a source from this channel's agent."""
        await require(interaction, Action.DETACH, self._options.manager_roles)
        place = interaction_place(interaction, _OUTSIDE_SERVER)
        found, removed = await self._core.detach(place.conversation, place.scope, source)
        await interaction.response.send_message(
            f"Detached {found.name}." if removed else f"{found.name} was not attached here."
        )

    @detach.autocomplete("source")
    async def _detach_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        place = place_of(interaction.channel)
        if place is None:
            return []
        return _choices([s.name for s in await self._core.attached(place.conversation)], current)

    @app_commands.command(
        name="sources", description="This server's sources and what is attached here."
    )
    @app_commands.guild_only()
    async def sources(self, interaction: discord.Interaction) -> None:
        """List the guild's sources with status and size; attached ones are marked."""
        await require(interaction, Action.LIST_SOURCES, self._options.manager_roles)
        place = interaction_place(interaction, _OUTSIDE_SERVER)
        listed = await self._core.sources(place.scope)
        attached = {s.id for s in await self._core.attached(place.conversation)}
        if not listed:
            text = "No sources yet: upload a PDF here or use /load."
        else:
            lines = [
                f"{'📎' if s.id in attached else '▫️'} **{s.name}**: {s.status},"
                f" {s.pages} pages, {s.passages} passages"
                for s in listed
            ]
            text = "\n".join(lines) + "\n-# 📎 attached to this channel's agent"
        await interaction.response.send_message(text[:2000], ephemeral=True)

    @app_commands.command(name="forget-source", description="Delete a source from this server.")
    @app_commands.describe(source="The source to delete, with its passages")
    @app_commands.guild_only()
    async def forget_source(self, interaction: discord.Interaction, source: str) -> None:
        """Ask for confirmation, then delete the source everywhere in this guild."""
        await require(interaction, Action.FORGET_SOURCE, self._options.manager_roles)
        place = interaction_place(interaction, _OUTSIDE_SERVER)

        async def confirmed(pressed: discord.Interaction) -> None:
            await pressed.response.defer()
            try:
                gone = await self._core.delete_source(place.scope, source)
                text = f"Deleted source {gone.name} and its passages."
            except ArchivistError as exc:
                text = str(exc)
            await pressed.edit_original_response(content=text, view=None)

        await ask_to_confirm(
            interaction,
            f"Delete source {source} for every channel of this server? This cannot be undone.",
            confirmed,
            timeout=self._options.confirm_timeout,
        )

    @forget_source.autocomplete("source")
    async def _forget_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._guild_choices(interaction, current)


def _editor(message: discord.Message) -> Callable[[str], Awaitable[object]]:
    return lambda text: message.edit(content=text)


def _choices(names: list[str], current: str) -> list[app_commands.Choice[str]]:
    wanted = current.casefold()
    matching = [n for n in names if wanted in n.casefold()]
    return [app_commands.Choice(name=n[:100], value=n[:100]) for n in matching[:_CHOICES]]

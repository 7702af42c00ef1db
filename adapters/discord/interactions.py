"""Answering interactions and reporting failures: one sentence to the user, the cause logged."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from agent.errors import ArchivistError

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on our side (it has been logged): try again."


def sentence_for(error: BaseException, where: str) -> str:
    """The user's sentence for a failure; unexpected ones are logged with their traceback."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, ArchivistError):
        log.info("%s: %s", where, error)
        return str(error)
    if isinstance(error, app_commands.CheckFailure) and str(error):
        return str(error)
    log.error("%s failed", where, exc_info=error)
    return INTERNAL_ERROR


async def respond(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    """Answer an interaction whether or not it was already answered or deferred."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral)


async def on_app_command_error(
    interaction: discord.Interaction, error: app_commands.AppCommandError
) -> None:
    """The command tree's single error handler: tell the user, log the cause."""
    name = interaction.command.qualified_name if interaction.command else "command"
    text = sentence_for(error, f"/{name} in {interaction.channel_id}")
    try:
        await respond(interaction, text)
    except discord.HTTPException:
        log.warning("could not report a /%s failure to the user", name, exc_info=True)

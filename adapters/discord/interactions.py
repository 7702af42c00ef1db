"""Answering interactions and reporting their failures: one sentence to the user, the cause logged.

The sentence is :func:`adapters.failures.sentence_for`'s; only unwrapping what discord.py puts
around a command's own error is Discord's business.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from adapters.failures import sentence_for

log = logging.getLogger(__name__)


def command_sentence(error: app_commands.AppCommandError, where: str) -> str:
    """The sentence for a failed command: its own error's, or a check's words."""
    if isinstance(error, app_commands.CommandInvokeError):
        return sentence_for(error.original, where)
    if isinstance(error, app_commands.CheckFailure) and str(error):
        return str(error)
    return sentence_for(error, where)


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
    text = command_sentence(error, f"/{name} in {interaction.channel_id}")
    try:
        await respond(interaction, text)
    except discord.HTTPException:
        log.warning("could not report a /%s failure to the user", name, exc_info=True)

"""Where a Discord event happened, as the core's conversation key and workspace scope."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from agent.core import ArchivistError

Channel = discord.abc.GuildChannel | discord.Thread


@dataclass(frozen=True)
class Place:
    """A channel's agent (``discord:<guild>:<channel>``) and its guild's sources (scope)."""

    conversation: str
    scope: str
    channel: Channel


def place_of(channel: object) -> Place | None:
    """The place of a guild channel; a thread belongs to its parent channel's agent.

    None for direct messages: sources belong to servers, so the bot works in servers only.
    """
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        if parent is None:
            return None
        guild, channel_id = channel.guild, parent.id
    elif isinstance(channel, discord.abc.GuildChannel):
        guild, channel_id = channel.guild, channel.id
    else:
        return None
    return Place(f"discord:{guild.id}:{channel_id}", f"discord:{guild.id}", channel)


def interaction_place(interaction: discord.Interaction, refusal: str) -> Place:
    """Where a slash command was used; ``refusal`` (raised) outside a server channel."""
    place = place_of(interaction.channel)
    if place is None:
        raise ArchivistError(refusal)
    return place

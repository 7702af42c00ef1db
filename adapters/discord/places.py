"""Where a Discord event happened, as the core's conversation key and workspace scope."""

from __future__ import annotations

from dataclasses import dataclass

import discord

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

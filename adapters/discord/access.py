"""Who may manage sources: Manage Channels in the channel, or a configured manager role."""

from __future__ import annotations

import discord

from agent.errors import ArchivistError


class Refused(ArchivistError):
    """The user may not do this here; the message says what is missing."""


def management_refusal(
    user: discord.abc.User | discord.Member,
    channel: object,
    manager_roles: tuple[str, ...],
) -> str | None:
    """None when ``user`` may manage sources in ``channel``, else what is missing."""
    if not isinstance(user, discord.Member) or not isinstance(
        channel, discord.abc.GuildChannel | discord.Thread
    ):
        return "Sources are managed in server channels, not in direct messages."
    if channel.permissions_for(user).manage_channels:
        return None
    if any(role.name in manager_roles or str(role.id) in manager_roles for role in user.roles):
        return None
    needed = "the Manage Channels permission"
    if manager_roles:
        needed += " or one of the roles " + ", ".join(manager_roles)
    return f"Managing sources needs {needed} in this channel."


def require_manager(interaction: discord.Interaction, manager_roles: tuple[str, ...]) -> None:
    """Raise :class:`Refused` unless the interaction's user may manage sources here.

    Discord resolves the user's permissions in the channel for every interaction.
    """
    if interaction.permissions.manage_channels:
        return
    refusal = management_refusal(interaction.user, interaction.channel, manager_roles)
    if refusal:
        raise Refused(refusal)

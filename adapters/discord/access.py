"""Who manages sources on Discord: Manage Channels in the channel, or a configured role.

This module only answers "a manager here?"; what follows is :mod:`adapters.policy`'s.
"""

from __future__ import annotations

import discord

from adapters import policy
from adapters.policy import Action, Standing


def standing(
    user: discord.abc.User | discord.Member,
    channel: object,
    manager_roles: tuple[str, ...],
) -> Standing:
    """Whether ``user`` manages sources in ``channel``, and what it needs there."""
    if not isinstance(user, discord.Member) or not isinstance(
        channel, discord.abc.GuildChannel | discord.Thread
    ):
        return Standing(manager=False, needs="a server channel, not a direct message")
    needs = "the Manage Channels permission"
    if manager_roles:
        needs += " or one of the roles " + ", ".join(manager_roles)
    needs += " in this channel"
    manager = channel.permissions_for(user).manage_channels or any(
        role.name in manager_roles or str(role.id) in manager_roles for role in user.roles
    )
    return Standing(manager=manager, needs=needs)


async def require(
    interaction: discord.Interaction, action: Action, manager_roles: tuple[str, ...]
) -> None:
    """Raise :class:`~adapters.failures.Refused` unless the user may do ``action`` here.

    Discord resolves the user's permissions in the channel for every interaction.
    """

    async def asked() -> Standing:
        found = standing(interaction.user, interaction.channel, manager_roles)
        if interaction.permissions.manage_channels:
            return Standing(manager=True, needs=found.needs)
        return found

    await policy.require(action, asked)


async def require_of_author(
    message: discord.Message, action: Action, manager_roles: tuple[str, ...]
) -> None:
    """Raise :class:`~adapters.failures.Refused` unless a message's author may do ``action``."""

    async def asked() -> Standing:
        return standing(message.author, message.channel, manager_roles)

    await policy.require(action, asked)

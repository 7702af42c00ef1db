"""A confirmation prompt only the person who asked can answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from adapters.discord.interactions import respond
from adapters.failures import sentence_for

Confirmed = Callable[[discord.Interaction], Awaitable[None]]


class Confirm(discord.ui.View):
    """Confirm / Cancel buttons for something destructive; times out after ``timeout``."""

    def __init__(self, author_id: int, on_confirm: Confirmed, *, timeout: float = 120.0) -> None:
        super().__init__(timeout=timeout)
        self._author_id = author_id
        self._on_confirm = on_confirm

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the author may press; everyone else is told so, privately."""
        if interaction.user.id == self._author_id:
            return True
        await interaction.response.send_message(
            "Only the person who ran the command can answer this.", ephemeral=True
        )
        return False

    async def on_error(
        self,
        interaction: discord.Interaction,
        error: Exception,
        item: discord.ui.Item[Confirm],
    ) -> None:
        """Report a failed confirmed action to the person who pressed."""
        await respond(interaction, sentence_for(error, f"confirmation in {interaction.channel_id}"))

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction, _button: discord.ui.Button[Confirm]
    ) -> None:
        """Run the confirmed action."""
        self.stop()
        await self._on_confirm(interaction)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(
        self, interaction: discord.Interaction, _button: discord.ui.Button[Confirm]
    ) -> None:
        """Drop the prompt."""
        self.stop()
        await interaction.response.edit_message(content="Cancelled.", view=None)

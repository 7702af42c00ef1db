"""A confirmation prompt only the person who asked can answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from adapters.discord.interactions import respond
from adapters.failures import sentence_for

log = logging.getLogger(__name__)

Confirmed = Callable[[discord.Interaction], Awaitable[None]]


async def ask_to_confirm(
    interaction: discord.Interaction, question: str, on_confirm: Confirmed, *, timeout: float
) -> None:
    """Answer ``interaction`` with ``question`` and Confirm / Cancel buttons for its user."""
    await interaction.response.send_message(
        question, view=Confirm(interaction, on_confirm, timeout=timeout)
    )


class Confirm(discord.ui.View):
    """Confirm / Cancel buttons for something destructive, disabled after ``timeout`` seconds.

    ``asked`` is the interaction whose answer carries the buttons.
    """

    def __init__(
        self, asked: discord.Interaction, on_confirm: Confirmed, *, timeout: float
    ) -> None:
        super().__init__(timeout=timeout)
        self._asked = asked
        self._on_confirm = on_confirm

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the author may press; everyone else is told so, privately."""
        if interaction.user.id == self._asked.user.id:
            return True
        await interaction.response.send_message(
            "Only the person who ran the command can answer this.", ephemeral=True
        )
        return False

    async def on_timeout(self) -> None:
        """Grey the buttons out: nothing listens to them any more, so a press would fail."""
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        try:
            await self._asked.edit_original_response(view=self)
        except discord.HTTPException as exc:  # the prompt was deleted, or the token expired
            log.info("could not disable a confirmation in %s: %s", self._asked.channel_id, exc)

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

"""The Discord adapter: mentions, PDF uploads and slash commands on one agent core."""

from adapters.discord.options import DiscordOptions
from adapters.discord.service import DiscordAdapter, DiscordUnavailable

__all__ = ["DiscordAdapter", "DiscordOptions", "DiscordUnavailable"]

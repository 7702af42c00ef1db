"""What the Discord adapter is told by the composition root (it reads no configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.policy import UploadPolicy


@dataclass(frozen=True)
class DiscordOptions:
    """How the bot behaves on Discord; the defaults are what a new server gets."""

    token: str
    api_base_url: str | None = None
    """Discord's REST API root (e.g. a rate-limit proxy's); None for Discord's own."""
    gateway_url: str | None = None
    """The gateway websocket; None for the one Discord names."""
    dev_guild_id: int | None = None
    """Sync slash commands to this guild only (instant while developing)."""
    reply_in_thread: bool = False
    ingest_uploads: UploadPolicy = "always"
    manager_roles: tuple[str, ...] = ()
    """Roles (names or ids) that may manage sources besides Manage Channels holders."""
    respond_to_bots: bool = False
    show_thoughts: bool = False
    max_upload_bytes: int = 100 * 1024 * 1024
    progress_interval: float = 1.5
    """Seconds between edits of a progress message (Discord rate-limits edits)."""
    confirm_timeout: float = 120.0
    """Seconds a confirmation's buttons wait for a press before they are disabled."""
    shard_count: int | None = None
    """Shards across every process; None: one process, as many shards as Discord advises."""
    shard_ids: tuple[int, ...] = ()
    """The shards this process runs (with ``shard_count``); empty: all of them."""

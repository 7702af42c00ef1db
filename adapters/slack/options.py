"""What the Slack adapter is told by the composition root (it reads no configuration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adapters.policy import UploadPolicy


@dataclass(frozen=True)
class SlackOptions:
    """How the bot behaves on Slack; the defaults are what a new workspace gets."""

    bot_token: str
    app_token: str | None = None
    """Socket Mode when set; otherwise the HTTP Events API with ``signing_secret``."""
    signing_secret: str | None = None
    api_base_url: str | None = None
    """The Web API root (``https://slack.com/api/`` when None)."""
    http_host: str = "0.0.0.0"  # noqa: S104 (Slack must reach it: behind a load balancer)
    http_port: int = 3000
    http_path: str = "/slack/events"
    managers: Literal["admins", "everyone"] = "admins"
    manager_user_ids: tuple[str, ...] = field(default_factory=tuple)
    ingest_uploads: UploadPolicy = "always"
    """Shared PDFs to load: all, those on messages that mention the bot, or none."""
    allow_private_urls: bool = False
    allowed_url_hosts: frozenset[str] = frozenset()
    max_upload_bytes: int = 100 * 1024 * 1024
    show_thoughts: bool = False
    progress_interval: float = 1.5
    """Seconds between updates of a progress message (chat.update is rate-limited)."""

"""A running Discord adapter on the real core, connected to a fake Discord on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord import DiscordAdapter, DiscordOptions
from adapters.live import WRITING_MARK
from agent.core import Core
from bot.app import open_runtime
from bot.config import Settings
from tests.conftest import with_llm
from tests.fake_discord import FakeDiscord, FakeInteraction
from tests.fake_openai import FakeOpenAI


@dataclass
class Server:
    """The fake Discord, the fake model, the real core and the adapter under test."""

    fake: FakeDiscord
    llm: FakeOpenAI
    core: Core
    adapter: DiscordAdapter
    guild: int
    docs: int
    admin: int
    reader: int

    @property
    def conversation(self) -> str:
        """The agent of the #docs channel."""
        return f"discord:{self.guild}:{self.docs}"

    @property
    def scope(self) -> str:
        """The guild's sources."""
        return f"discord:{self.guild}"

    def mention(self, text: str) -> str:
        """``text`` addressed to the bot."""
        return f"<@{self.fake.bot_id}> {text}"

    def attachment(self, path: Path) -> dict[str, Any]:
        """``path`` on the fake CDN, as an attachment to post or pass to /load."""
        return self.fake.add_attachment(path.read_bytes(), path.name)


def written(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages that are delivered, not previews of a reply still being written."""
    return [m for m in messages if not m["content"].endswith(WRITING_MARK)]


@pytest.fixture
def backend() -> str:
    """The adapter does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


@pytest.fixture
def options() -> dict[str, object]:
    """Overrides of the adapter's options for one test (parametrise to change them)."""
    return {}


@asynccontextmanager
async def serving(
    fake: FakeDiscord, core: Core, guild: int, options: dict[str, object]
) -> AsyncIterator[DiscordAdapter]:
    """The adapter on ``core``, connected to ``fake`` with ``guild`` as its dev guild."""
    with fake.patch_client():
        adapter = DiscordAdapter(
            core,
            DiscordOptions(
                token=fake.token,
                api_base_url=fake.api_base,
                gateway_url=fake.gateway_url,
                dev_guild_id=guild,
                progress_interval=0.05,
                **options,  # type: ignore[arg-type]
            ),
            guild_ready_timeout=0.05,
        )
        running = asyncio.create_task(adapter.run())
        await asyncio.wait_for(adapter.wait_until_ready(), 10)
        try:
            yield adapter
        finally:
            await adapter.close()
            await asyncio.wait_for(running, 10)
            assert not fake.unknown_routes, fake.unknown_routes
            assert not fake.errors, fake.errors


@pytest.fixture
async def server(
    settings: Settings, fake_openai: FakeOpenAI, options: dict[str, object]
) -> AsyncIterator[Server]:
    async with FakeDiscord() as fake, open_runtime(with_llm(settings, fake_openai)) as runtime:
        guild = fake.add_guild("Library")
        docs = fake.add_channel(guild, "docs")
        librarian = fake.add_role(
            guild, "Librarian", discord.Permissions(manage_channels=True).value
        )
        admin = fake.add_member(guild, "alice", roles=[librarian])
        reader = fake.add_member(guild, "bob")
        async with serving(fake, runtime.core, guild, options) as adapter:
            yield Server(fake, fake_openai, runtime.core, adapter, guild, docs, admin, reader)


async def answered(interaction: FakeInteraction) -> dict[str, Any]:
    """What the user sees: the message a callback or its first follow-up posted."""
    response = await interaction.response()
    if response["type"] == 4:
        shown = interaction.original
        assert shown is not None
        return shown
    return await interaction.followup(0)

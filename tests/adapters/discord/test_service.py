"""The Discord adapter as ``archivist run`` drives it: a connection Discord ends for good is a
sentence, and the adapter serves again when run again."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.discord import DiscordAdapter, DiscordOptions
from adapters.discord.service import DiscordUnavailable
from bot.app import open_runtime
from bot.config import Settings
from tests.fake_discord import FakeDiscord


@pytest.fixture
def backend() -> str:
    return "lite"


async def test_a_gateway_closed_for_good_is_a_sentence_and_a_new_run_serves_again(
    settings: Settings,
) -> None:
    async with FakeDiscord() as fake, open_runtime(settings) as runtime:
        guild = fake.add_guild("Library")
        docs = fake.add_channel(guild, "docs")
        member = fake.add_member(guild, "bob")
        with fake.patch_client():
            adapter = DiscordAdapter(
                runtime.core,
                DiscordOptions(token=fake.token, dev_guild_id=guild),
                guild_ready_timeout=0.05,
            )
            running = asyncio.create_task(adapter.run())
            await asyncio.wait_for(adapter.wait_until_serving(), 10)
            first = adapter.bot

            await fake.disconnect(code=4004)
            with pytest.raises(DiscordUnavailable) as failed:
                await asyncio.wait_for(running, 10)
            assert str(failed.value) == (
                "Discord closed the gateway connection (4004, authentication failed): copy the"
                " token again from the developer portal (Bot → Reset Token) into DISCORD_TOKEN."
            )
            assert adapter.serving()  # it had connected before it failed

            running = asyncio.create_task(adapter.run())
            await asyncio.wait_for(adapter.wait_until_serving(), 10)
            assert adapter.bot is not first
            asked = await fake.send_message(docs, member, f"<@{fake.bot_id}> anything?")
            await fake.wait_for(lambda: fake.replies_to(asked["id"]), what="the answer")
            await fake.wait_for(lambda: first.is_closed(), what="the failed client closed")
            await adapter.close()
            await asyncio.wait_for(running, 10)
        assert fake.live_connections == 0
        assert not fake.errors


async def test_a_gateway_outage_is_logged_as_sentences_not_tracebacks(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord() as fake, open_runtime(settings) as runtime:
        guild = fake.add_guild("Library")
        docs = fake.add_channel(guild, "docs")
        member = fake.add_member(guild, "bob")
        with fake.patch_client():
            adapter = DiscordAdapter(
                runtime.core,
                DiscordOptions(token=fake.token, dev_guild_id=guild),
                guild_ready_timeout=0.05,
            )
            running = asyncio.create_task(adapter.run())
            await asyncio.wait_for(adapter.wait_until_serving(), 10)
            with caplog.at_level(logging.INFO, logger="discord"), fake.gateway_down():
                await fake.disconnect(code=4000)
                await fake.wait_for(lambda: fake.gateway_refusals >= 2, what="two retries")
            asked = await fake.send_message(docs, member, f"<@{fake.bot_id}> anything?")
            await fake.wait_for(lambda: fake.replies_to(asked["id"]), what="the answer")
            await adapter.close()
            await asyncio.wait_for(running, 10)
    from_discord = [r for r in caplog.records if r.name.startswith("discord")]
    assert not [r for r in from_discord if r.exc_info or r.exc_text]
    lost = [r.getMessage() for r in from_discord if "Discord is unreachable" in r.getMessage()]
    assert lost and lost[0].startswith(
        "Discord is unreachable (the gateway answered HTTP 503): reconnecting in "
    )

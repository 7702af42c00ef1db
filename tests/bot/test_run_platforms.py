"""``archivist run`` with a platform that fails: one sentence, /healthz says so, the platform
is retried, and the other one keeps serving."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.test_run import Bot, get, on_discord, run_env, start
from tests.fake_discord import FakeDiscord
from tests.fake_slack import FakeSlack


@pytest.fixture
async def discord_world() -> AsyncIterator[tuple[FakeDiscord, int, int]]:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Library")
        channel = fake.add_channel(guild, "docs")
        member = fake.add_member(guild, "bob")
        yield fake, channel, member


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def answered(fake: FakeDiscord, channel: int, member: int) -> str:
    """Ask the bot on the fake Discord; its (search-only) answer."""
    asked = await fake.send_message(channel, member, f"<@{fake.bot_id}> anything?")
    await fake.wait_for(lambda: fake.replies_to(asked["id"]), what="the answer")
    return str(fake.replies_to(asked["id"])[0]["content"])


def no_traceback(bot: Bot) -> None:
    assert not any("Traceback" in line for line in bot.lines), "\n".join(bot.lines)


async def test_a_rejected_slack_token_leaves_discord_serving_and_is_retried(
    tmp_path: Path, model_cache: Path, discord_world: tuple[FakeDiscord, int, int]
) -> None:
    fake, channel, member = discord_world
    async with FakeSlack() as slack:
        env = run_env(
            tmp_path,
            model_cache,
            **on_discord(fake),
            SLACK_BOT_TOKEN="xoxb-revoked-0123456789",
            SLACK_APP_TOKEN=slack.app_token,
            ARCHIVIST_SLACK_API_BASE_URL=slack.api_base,
        )
        bot = await start(env)
        port = int((await bot.line(r"serving /healthz and /metrics on http://[\d.]+:(\d+)"))[1])
        await bot.line(r"slack: Slack rejected the bot token \(invalid_auth\).* Retrying in 1 s\.")
        await bot.line(r"connected to Discord as Archivist")
        assert "Search results" in await answered(fake, channel, member)

        status, body = await get(f"http://127.0.0.1:{port}/healthz")
        report = json.loads(body)
        assert status == 503
        assert report["checks"]["discord"] == {"ok": True}
        assert report["checks"]["slack"]["error"].startswith("Slack rejected the bot token")

        # Retried with backoff: auth.test is called again.
        await slack.wait_for(lambda: len(slack.calls_to("auth.test")) >= 2, what="a retry")
        assert await bot.stop() == 0
    no_traceback(bot)
    assert not any("xoxb-revoked" in line for line in bot.lines)


async def test_an_exception_in_discords_event_handling_reconnects_discord_alone(
    tmp_path: Path, model_cache: Path, discord_world: tuple[FakeDiscord, int, int]
) -> None:
    fake, channel, member = discord_world
    bot = await start(run_env(tmp_path, model_cache, **on_discord(fake)))
    await bot.line(r"connected to Discord as Archivist")
    # An interaction without its id: discord.py raises KeyError while parsing it.
    await fake.dispatch_raw("INTERACTION_CREATE", {"type": 2, "data": {"name": "sources"}})
    await bot.line(r"discord: .*KeyError.* Retrying in 1 s\.")
    await fake.wait_for(lambda: len(fake.identifies) >= 2, what="a new session")
    assert "Search results" in await answered(fake, channel, member)
    assert bot.process.returncode is None
    assert await bot.stop() == 0
    no_traceback(bot)


@pytest.mark.parametrize(
    ("platform", "api_base_url"),
    [
        ("Discord", f"http://127.0.0.1:{free_port()}/api/v10"),
        ("Discord", "http://discord.invalid/api/v10"),
        ("Slack", f"http://127.0.0.1:{free_port()}/api/"),
        ("Slack", "http://slack.invalid/api/"),
    ],
    ids=["discord-refused", "discord-dns", "slack-refused", "slack-dns"],
)
async def test_an_unreachable_platform_at_start_up_is_one_sentence(
    tmp_path: Path, model_cache: Path, platform: str, api_base_url: str
) -> None:
    if platform == "Discord":
        credentials = {
            "DISCORD_TOKEN": "unused-token-0123456789",
            "ARCHIVIST_DISCORD_API_BASE_URL": api_base_url,
        }
    else:
        credentials = {
            "SLACK_BOT_TOKEN": "xoxb-unused-0123456789",
            "SLACK_APP_TOKEN": "xapp-unused-0123456789",
            "ARCHIVIST_SLACK_API_BASE_URL": api_base_url,
        }
    bot = await start(run_env(tmp_path, model_cache, **credentials))
    host = re.escape(api_base_url.split("/")[2].split(":")[0])
    why = "connection refused" if "127.0.0.1" in api_base_url else "its name does not resolve"
    await bot.line(rf"error: Cannot reach {platform} at {host} \({why}\)")
    assert await asyncio.wait_for(bot.process.wait(), 60) == 1
    await bot.line("<eof>")
    no_traceback(bot)
    assert len([line for line in bot.lines if "Cannot reach" in line]) == 1


async def test_when_every_platform_fails_before_any_connects_it_exits_saying_why(
    tmp_path: Path, model_cache: Path
) -> None:
    env = run_env(
        tmp_path,
        model_cache,
        DISCORD_TOKEN="unused-token-0123456789",
        ARCHIVIST_DISCORD_API_BASE_URL=f"http://127.0.0.1:{free_port()}/api/v10",
        SLACK_BOT_TOKEN="xoxb-unused-0123456789",
        SLACK_APP_TOKEN="xapp-unused-0123456789",
        ARCHIVIST_SLACK_API_BASE_URL="http://slack.invalid/api/",
    )
    bot = await start(env)
    await bot.line(
        r"error: No chat platform could start: discord: Cannot reach Discord at 127\.0\.0\.1"
        r" \(connection refused\).* slack: Cannot reach Slack at slack\.invalid"
    )
    assert await asyncio.wait_for(bot.process.wait(), 60) == 1
    await bot.line("<eof>")
    no_traceback(bot)

"""``archivist run`` as a real process: start-up, /healthz and /metrics, a real answer on
the fake Discord, and a SIGTERM that lets the answer under way finish."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.run import NO_PLATFORM
from tests.fake_discord import FakeDiscord
from tests.fake_openai import FakeOpenAI


class Bot:
    """A running ``archivist run`` process and the log lines it has written so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            async with self._changed:
                self.lines.append(raw.decode().rstrip())
                self._changed.notify_all()
        async with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    async def line(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        """The first log line matching ``pattern``, once it has been written."""

        def found() -> re.Match[str] | None:
            return next((m for m in map(re.compile(pattern).search, self.lines) if m), None)

        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: found() or "<eof>" in self.lines), timeout
            )
        match = found()
        assert match, f"no line matching {pattern!r}:\n" + "\n".join(self.lines)
        return match

    async def stop(self) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 60)
        await self._reader
        return code


def run_env(tmp_path: Path, model_cache: Path, **extra: str) -> dict[str, str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ARCHIVIST_", "OPENAI_", "DISCORD_", "SLACK_"))
    }
    return {
        **base,
        "ARCHIVIST_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "ARCHIVIST_EMBEDDINGS_CACHE_DIR": str(model_cache),
        "ARCHIVIST_SERVER_PORT": "0",
        **extra,
    }


def on_discord(fake: FakeDiscord) -> dict[str, str]:
    """The variables that point ``archivist run`` at the fake Discord."""
    return {
        "DISCORD_TOKEN": fake.token,
        "ARCHIVIST_DISCORD_API_BASE_URL": fake.api_base,
        "ARCHIVIST_DISCORD_GATEWAY_URL": fake.gateway_url,
    }


async def start(env: dict[str, str]) -> Bot:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, stderr=asyncio.subprocess.PIPE
    )
    return Bot(process)


async def archivist(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``archivist ARGS`` as its own process, without blocking the fake Discord's loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


@pytest.fixture
async def discord_world() -> AsyncIterator[tuple[FakeDiscord, int, int, int]]:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Library")
        channel = fake.add_channel(guild, "docs")
        member = fake.add_member(guild, "bob")
        yield fake, guild, channel, member


async def test_without_a_platform_it_says_what_to_set_and_exits_2(
    tmp_path: Path, model_cache: Path
) -> None:
    bot = await start(run_env(tmp_path, model_cache))
    await bot.line(re.escape(NO_PLATFORM))
    assert await asyncio.wait_for(bot.process.wait(), 60) == 2


async def test_a_worker_without_a_queue_says_what_to_set_and_exits_2(
    tmp_path: Path, model_cache: Path
) -> None:
    code, _, err = await archivist(run_env(tmp_path, model_cache), "worker")
    assert code == 2
    assert "set [storage] database_url (PostgreSQL) and [ingest] queue = true" in err


async def test_it_serves_health_metrics_and_answers_then_stops_gracefully(
    tmp_path: Path,
    model_cache: Path,
    fake_openai: FakeOpenAI,
    discord_world: tuple[FakeDiscord, int, int, int],
) -> None:
    fake, _, channel, member = discord_world
    env = run_env(
        tmp_path,
        model_cache,
        **on_discord(fake),
        ARCHIVIST_LLM_BASE_URL=fake_openai.base_url,
        ARCHIVIST_LLM_MODEL="fake-model",
        OPENAI_API_KEY="sk-run-secret-0123456789",
    )
    bot = await start(env)
    port = int((await bot.line(r"serving /healthz and /metrics on http://127\.0\.0\.1:(\d+)"))[1])
    await bot.line(r"connected to Discord as Archivist")
    status, body = await get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200, body
    for name in ("sqlite", "milvus", "llm", "discord"):
        assert f'"{name}": {{"ok": true}}' in body

    # A question whose model call is still waiting when SIGTERM arrives is answered.
    release = fake_openai.hang("Answered before stopping.")
    asked = await fake.send_message(channel, member, f"<@{fake.bot_id}> Still there?")
    await fake_openai.wait_for_requests(1)
    bot.process.send_signal(signal.SIGTERM)
    await bot.line("shutting down")
    release.set()
    await fake.wait_for(lambda: fake.replies_to(asked["id"]), what="the answer")
    assert fake.replies_to(asked["id"])[0]["content"] == "Answered before stopping."
    assert await asyncio.wait_for(bot.process.wait(), 60) == 0
    await bot.line("stopped")
    assert not any("sk-run-secret" in line for line in bot.lines)
    assert not any(fake.token in line for line in bot.lines)


async def test_a_model_that_is_down_is_unreachable_for_the_channel_and_named_in_the_log(
    tmp_path: Path,
    model_cache: Path,
    discord_world: tuple[FakeDiscord, int, int, int],
) -> None:
    fake, _, channel, member = discord_world
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    env = run_env(
        tmp_path,
        model_cache,
        **on_discord(fake),
        ARCHIVIST_LLM_BASE_URL=base_url,
        ARCHIVIST_LLM_MODEL="fake-model",
        ARCHIVIST_LLM_MAX_RETRIES="0",
    )
    bot = await start(env)
    await bot.line(r"connected to Discord as Archivist")
    asked = await fake.send_message(channel, member, f"<@{fake.bot_id}> Still there?")
    await fake.wait_for(lambda: fake.replies_to(asked["id"]), what="the answer")
    [reply] = fake.replies_to(asked["id"])
    assert "The language model is unreachable" in reply["content"]
    assert "127.0.0.1" not in reply["content"], "the model's address is for the operator"
    # The operator's log names the endpoint and what failed underneath.
    await bot.line(rf"LLM request failed \(connection\).*{re.escape(base_url)}.*ConnectError")
    assert await bot.stop() == 0


async def test_metrics_count_an_answered_turn(
    tmp_path: Path,
    model_cache: Path,
    discord_world: tuple[FakeDiscord, int, int, int],
) -> None:
    fake, _, channel, member = discord_world
    env = run_env(
        tmp_path,
        model_cache,
        **on_discord(fake),
    )
    bot = await start(env)
    port = int((await bot.line(r"serving /healthz and /metrics on http://127\.0\.0\.1:(\d+)"))[1])
    await bot.line(r"connected to Discord as Archivist")
    await bot.line(r"llm: not configured")
    asked = await fake.send_message(channel, member, f"<@{fake.bot_id}> anything?")
    await fake.wait_for(lambda: fake.replies_to(asked["id"]), what="the search-only answer")
    assert (
        "Search results (no language model configured)"
        in fake.replies_to(asked["id"])[0]["content"]
    )
    _, metrics = await get(f"http://127.0.0.1:{port}/metrics")
    # Labelled by replica (<hostname>-<pid> unless [server] replica names it).
    replica = f"{socket.gethostname()}-{bot.process.pid}"
    assert f'archivist_turns_total{{outcome="answered",replica="{replica}"}} 1.0' in metrics
    assert await bot.stop() == 0


async def test_a_refused_intent_stops_start_up_with_the_switch_to_turn_on(
    tmp_path: Path, model_cache: Path
) -> None:
    async with FakeDiscord(message_content_allowed=False) as fake:
        env = run_env(
            tmp_path,
            model_cache,
            **on_discord(fake),
        )
        bot = await start(env)
        await bot.line(r"turn on 'Message Content Intent'")
        assert await asyncio.wait_for(bot.process.wait(), 60) == 1


async def test_an_unreachable_milvus_server_stops_start_up(
    tmp_path: Path, model_cache: Path
) -> None:
    env = run_env(
        tmp_path,
        model_cache,
        DISCORD_TOKEN="unused-token-0123456789",
        ARCHIVIST_MILVUS_URI="http://127.0.0.1:9",
        ARCHIVIST_MILVUS_TIMEOUT="2",
    )
    bot = await start(env)
    await bot.line(r"Milvus at http://127\.0\.0\.1:9 is unreachable")
    assert await asyncio.wait_for(bot.process.wait(), 60) == 4

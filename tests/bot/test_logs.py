"""What the operator's console shows of a real ``archivist`` process: no secrets, no noise."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.documents.archive import UNAVAILABLE
from bot.commands.running import EXIT_UNAVAILABLE
from bot.logs import REDACTED, RedactSecrets
from tests import pdfs
from tests.bot.test_cli import _passages_going_in
from tests.bot.test_load_progress import said
from tests.bot.test_run import Bot, on_discord, run_env
from tests.fake_discord import FakeDiscord
from tests.fake_openai import FakeOpenAI
from tests.milvus_server import MilvusServerProcess, free_port

pytestmark = pytest.mark.usefixtures("clean_env")


async def start(env: dict[str, str], *args: str) -> Bot:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, "run", env=env, stderr=asyncio.subprocess.PIPE
    )
    return Bot(process)


async def test_interaction_tokens_never_reach_the_debug_log(
    tmp_path: Path, model_cache: Path
) -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Library")
        channel = fake.add_channel(guild, "docs")
        member = fake.add_member(guild, "bob")
        bot = await start(run_env(tmp_path, model_cache, **on_discord(fake)), "-v")
        await bot.line(r"connected to Discord as Archivist")
        await fake.wait_for(lambda: fake.commands(guild) or fake.commands(), what="the commands")
        interaction = await fake.slash(guild, channel, member, "sources")
        await interaction.response()
        # discord.py logs the callback's URL and the event it received, both with the token.
        callback = await bot.line(rf"/interactions/{interaction.id}/(\S+)/callback")
        assert callback[1] == REDACTED
        assert await bot.stop() == 0
    leaked = [line for line in bot.lines if interaction.token in line]
    assert not leaked, leaked[:3]
    assert not any(fake.token in line for line in bot.lines)


@pytest.mark.parametrize(
    "message",
    [
        "POST https://discord.com/api/v10/webhooks/1234567890/{token}/messages/@original with x",
        "Webhook ID 1234567890 with PATCH https://x/webhooks/1234567890/{token} has returned 200",
        "For Shard ID None: WebSocket Event: {{'d': {{'token': '{token}', 'id': '1'}}}}",
        'received {{"token": "{token}", "type": 2}}',
    ],
)
def test_tokens_minted_at_run_time_are_redacted(message: str) -> None:
    token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQ-_abc"
    record = logging.LogRecord("discord.http", logging.DEBUG, __file__, 1, "%s", (), None)
    record.args = (message.format(token=token),)
    assert RedactSecrets([]).filter(record)
    assert token not in record.getMessage()
    assert REDACTED in record.getMessage()


async def test_model_requests_are_not_logged_at_the_default_level(
    tmp_path: Path, model_cache: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Library")
        channel = fake.add_channel(guild, "docs")
        member = fake.add_member(guild, "bob")
        env = run_env(
            tmp_path,
            model_cache,
            **on_discord(fake),
            ARCHIVIST_LLM_BASE_URL=fake_openai.base_url,
            ARCHIVIST_LLM_MODEL="fake-model",
        )
        fake_openai.reply("Here I am.")
        bot = await start(env)
        await bot.line(r"connected to Discord as Archivist")
        asked = await fake.send_message(channel, member, f"<@{fake.bot_id}> Still there?")
        await fake.wait_for(lambda: fake.replies_to(asked["id"]), what="the answer")
        assert fake.replies_to(asked["id"])[0]["content"] == "Here I am."
        assert await bot.stop() == 0
    requests = [line for line in bot.lines if "HTTP Request:" in line]
    assert not requests, requests


# pymilvus pings its channel every 10 s; Milvus Lite's in-process gRPC server allows a ping
# without data every 5 minutes and answers the third early one with GOAWAY "too_many_pings",
# about 100 s into a quiet spell. grpc's C core writes that to stderr, around our logging.
_QUIET_SPELL = 150.0


@pytest.mark.timeout(_QUIET_SPELL + 120)
async def test_a_quiet_bot_on_milvus_lite_prints_no_grpc_lines(
    tmp_path: Path, model_cache: Path
) -> None:
    async with FakeDiscord() as fake:
        bot = await start(run_env(tmp_path, model_cache, **on_discord(fake)))
        await bot.line(r"connected to Discord as Archivist")
        await asyncio.sleep(_QUIET_SPELL)
        assert await bot.stop() == 0
    noise = [line for line in bot.lines if "too_many_pings" in line or "chttp2" in line]
    assert not noise, noise


@pytest.mark.timeout(600)
def test_a_milvus_server_stopping_during_a_load_is_one_sentence_not_tracebacks(
    tmp_path: Path, model_cache: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "big.pdf", 120)
    data = tmp_path / "data"
    with MilvusServerProcess(tmp_path / "milvus", free_port()) as server:
        env = {
            **os.environ,
            "ARCHIVIST_STORAGE_DATA_DIR": str(data),
            "ARCHIVIST_EMBEDDINGS_CACHE_DIR": str(model_cache),
            "ARCHIVIST_MILVUS_URI": server.uri,
            "ARCHIVIST_MILVUS_TIMEOUT": "3",
            "ARCHIVIST_INGEST_PAGES_PER_TASK": "2",
        }
        load = ("load", "directory", "--name", "big", "--input-files", str(manual))
        console = tmp_path / "stderr.txt"
        with console.open("w") as errors:
            loader = subprocess.Popen(
                [sys.executable, "-m", "bot", *load],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        deadline = time.monotonic() + 300
        while not _passages_going_in(data / "archivist.db"):
            assert loader.poll() is None, console.read_text()
            assert time.monotonic() < deadline, "the load never started"
            time.sleep(0.05)
        server.stop()
        loader.wait(timeout=300)
    stderr = console.read_text()
    # pymilvus logged a traceback for every call that failed, past our handler (12 in a load).
    assert "Traceback" not in stderr
    assert said(stderr) == [f"error: {UNAVAILABLE}"]
    # Storage unavailable, as the README's table has it, not "the operation failed" (issue 13,
    # item 9).
    assert loader.returncode == EXIT_UNAVAILABLE

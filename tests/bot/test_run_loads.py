"""``archivist run`` stopped while a load runs (issue 13, item 6): new loads are refused with
a sentence, a running load gets ``shutdown_grace`` to finish, and one still running then is
rolled back, its progress message saying so."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest

from agent.documents.running import LOAD_REFUSED
from tests import pdfs
from tests.bot.test_run import Bot, archivist, on_discord, run_env, start
from tests.fake_discord import FakeDiscord
from tests.fake_openai import FakeOpenAI

JSON = dict[str, Any]


class World:
    """The fake Discord with a guild, its #docs and a librarian who may load."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.guild = fake.add_guild("Library")
        self.docs = fake.add_channel(self.guild, "docs")
        librarian = fake.add_role(
            self.guild, "Librarian", discord.Permissions(manage_channels=True).value
        )
        self.admin = fake.add_member(self.guild, "alice", roles=[librarian])

    def attachment(self, path: Path) -> JSON:
        return self.fake.add_attachment(path.read_bytes(), path.name)

    async def upload(self, path: Path) -> JSON:
        """A librarian shares ``path`` in #docs."""
        return await self.fake.send_message(
            self.docs, self.admin, attachments=[self.attachment(path)]
        )

    async def final_status(self, message: JSON) -> str:
        """The bot's last word on an upload, once it no longer says it is loading."""

        def done() -> str | None:
            replies = [r["content"] for r in self.fake.replies_to(message["id"])]
            return next((r for r in replies if not r.startswith("Loading")), None)

        return await self.fake.wait_for(done, what="the upload's final status")


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeDiscord() as fake:
        yield World(fake)


def _env(
    tmp_path: Path, model_cache: Path, world: World, llm: FakeOpenAI, grace: float
) -> dict[str, str]:
    # Embeddings from the fake OpenAI server: a load in progress is one whose embedding
    # request the fake holds.
    return run_env(
        tmp_path,
        model_cache,
        **on_discord(world.fake),
        ARCHIVIST_LLM_BASE_URL=llm.base_url,
        ARCHIVIST_LLM_MODEL="fake-model",
        OPENAI_API_KEY="sk-run-loads-0123456789",
        ARCHIVIST_EMBEDDINGS_BACKEND="openai",
        ARCHIVIST_EMBEDDINGS_BASE_URL=llm.base_url,
        ARCHIVIST_EMBEDDINGS_MODEL="fake-embedding",
        ARCHIVIST_SERVER_SHUTDOWN_GRACE=str(grace),
    )


async def _sources(env: dict[str, str]) -> list[JSON]:
    """``archivist sources list --json``, run while the fakes keep serving."""
    code, out, err = await archivist(env, "sources", "list", "--json")
    assert code == 0, err
    found: list[JSON] = json.loads(out)
    return found


async def _started(env: dict[str, str]) -> Bot:
    bot = await start(env)
    await bot.line(r"connected to Discord as Archivist")
    return bot


async def test_a_load_under_way_finishes_within_the_grace_and_a_new_one_is_refused(
    tmp_path: Path, model_cache: Path, fake_openai: FakeOpenAI, world: World
) -> None:
    env = _env(tmp_path, model_cache, world, fake_openai, grace=600)
    bot = await _started(env)
    release = fake_openai.hang_embeddings(pdfs.manual_marker(1))
    first = await world.upload(pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2))
    await fake_openai.wait_for_embedding(pdfs.manual_marker(1), timeout=120)

    bot.process.send_signal(signal.SIGTERM)
    await bot.line("shutting down")
    second = await world.upload(pdfs.make_manual_pdf(tmp_path / "later.pdf", 1))
    assert await world.final_status(second) == LOAD_REFUSED

    release.set()
    assert (await world.final_status(first)).startswith("Loaded ")
    assert await asyncio.wait_for(bot.process.wait(), 60) == 0
    await bot.line("stopped")
    assert [s["name"] for s in await _sources(env)] == ["manual"]


async def test_a_load_still_running_when_the_grace_ends_is_rolled_back_and_says_so(
    tmp_path: Path, model_cache: Path, fake_openai: FakeOpenAI, world: World
) -> None:
    env = _env(tmp_path, model_cache, world, fake_openai, grace=0)
    bot = await _started(env)
    fake_openai.hang_embeddings(pdfs.manual_marker(1))  # never released
    manual = world.attachment(pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2))
    command = await world.fake.slash(world.guild, world.docs, world.admin, "load", {"file": manual})
    await fake_openai.wait_for_embedding(pdfs.manual_marker(1), timeout=120)

    assert await bot.stop() == 0
    # The /load handler was awaited: its answer was edited before the bot disconnected.
    original = command.original
    assert original is not None
    assert original["content"] == (
        "Loading manual.pdf was stopped by the shutdown and nothing of it was kept:"
        " load it again in a minute."
    )
    assert await _sources(env) == []

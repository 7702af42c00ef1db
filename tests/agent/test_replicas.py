"""Several bot processes on one PostgreSQL: one conversation's turns never overlap across them,
different conversations run side by side, and a process that dies lets go of its turn."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
import pytest

from agent.db import open_database
from agent.documents.registry import SourceRegistry
from agent.errors import StateUnavailable
from agent.mind.conversations import Conversations
from tests.agent.mind.helpers import ScriptedAgents, message
from tests.postgres_server import PostgresServerProcess, free_port
from tests.waiting import until


async def _advisory(url: str, *, granted: bool) -> list[int]:
    """Pids of the backends holding (or waiting for) an advisory lock."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted = $1", granted
        )
        return [int(row["pid"]) for row in rows]
    finally:
        await conn.close()


def _one_waiter(url: str) -> Callable[[], Awaitable[bool]]:
    async def waiting() -> bool:
        return len(await _advisory(url, granted=False)) == 1

    return waiting


async def test_two_processes_take_turns_on_one_conversation(postgres_url: str) -> None:
    async with open_database(postgres_url) as first_db, open_database(postgres_url) as second_db:
        first_agents, second_agents = ScriptedAgents(), ScriptedAgents()
        first = Conversations(first_agents, exclusive=first_db.exclusive)  # type: ignore[arg-type]
        second = Conversations(second_agents, exclusive=second_db.exclusive)  # type: ignore[arg-type]
        one = asyncio.create_task(first.ask(message("one")))
        await first_agents.entered.wait()
        two = asyncio.create_task(second.ask(message("two")))
        await until(_one_waiter(postgres_url), "the second process waiting for the lock")
        assert second_agents.started == []
        # Another conversation is not held up by the first one's turn.
        second_agents.release["three"] = asyncio.Event()
        second_agents.release["three"].set()
        three = await second.ask(message("three", conversation="c:1:2"))
        assert three.messages == ["re: three"] and second_agents.started == ["three"]

        second_agents.release["two"] = asyncio.Event()
        second_agents.release["two"].set()
        first_agents.release["one"].set()
        assert (await one).messages == ["re: one"]
        assert (await two).messages == ["re: two"]
        assert second_agents.started == ["three", "two"]
        await first.close()
        await second.close()


async def test_a_dead_process_lets_go_of_its_turn(postgres_url: str) -> None:
    async with open_database(postgres_url) as first_db, open_database(postgres_url) as second_db:
        first_agents, second_agents = ScriptedAgents(), ScriptedAgents()
        first = Conversations(first_agents, exclusive=first_db.exclusive)  # type: ignore[arg-type]
        second = Conversations(second_agents, exclusive=second_db.exclusive)  # type: ignore[arg-type]
        stuck = asyncio.create_task(first.ask(message("one")))
        await first_agents.entered.wait()
        (holder,) = await _advisory(postgres_url, granted=True)
        second_agents.release["two"] = asyncio.Event()
        second_agents.release["two"].set()
        two = asyncio.create_task(second.ask(message("two")))
        await until(_one_waiter(postgres_url), "the second process waiting for the lock")
        # The first process's connection dies as it would with the process (killed, host lost).
        admin = await asyncpg.connect(postgres_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", holder)
        finally:
            await admin.close()
        assert (await two).messages == ["re: two"]
        # The stranded turn still ends, and its process serves the conversation again.
        first_agents.release["one"].set()
        assert (await stuck).messages == ["re: one"]
        first_agents.release["again"] = asyncio.Event()
        first_agents.release["again"].set()
        assert (await first.ask(message("again"))).messages == ["re: again"]
        await first.close()
        await second.close()


async def test_a_server_that_cannot_be_reached_is_named_without_its_password() -> None:
    port = free_port()
    with pytest.raises(StateUnavailable) as caught:
        async with open_database(f"postgresql://bot:pg-pass-789@127.0.0.1:{port}/archivist"):
            pass
    said = str(caught.value)
    assert f"PostgreSQL at postgresql://127.0.0.1:{port}/archivist" in said
    assert "cannot be reached" in said and "pg-pass-789" not in said


async def test_cut_connections_are_replaced_without_a_restart(postgres_url: str) -> None:
    async with open_database(postgres_url) as db:
        registry = SourceRegistry(db)
        await registry.open_for_loading("global", "kept", model="m", dim=4, created_by="t")
        admin = await asyncpg.connect(postgres_url)
        try:
            # Every connection the bot holds is cut, as when a proxy or the server drops them.
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid != pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert cut >= 1
        assert [s.name for s in await registry.visible()] == ["kept"]


async def test_a_server_gone_mid_way_is_one_sentence() -> None:
    with PostgresServerProcess() as server:
        async with open_database(server.url()) as db:
            registry = SourceRegistry(db)
            await registry.open_for_loading("global", "kept", model="m", dim=4, created_by="t")
            server.stop()
            with pytest.raises(StateUnavailable) as caught:
                await registry.visible()
            assert f"PostgreSQL at postgresql://127.0.0.1:{server.port}/postgres" in str(
                caught.value
            )

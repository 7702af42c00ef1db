"""Agent memory on real SQLite files: migration 4, agents and their core memory blocks."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import agent.db.sqlite_schema
from agent.db import Database, open_database
from agent.db.sqlite_schema import MIGRATIONS
from agent.documents.registry import SourceRegistry
from agent.mind.memory import AgentStore, CoreMemory, MemoryEditError
from agent.mind.messages import Message, StoredMessage
from agent.mind.recall import RecallStore

KEY = "console:local:default"
PERSONA = "I am Archivist, a careful librarian."
HUMAN = "Nothing known yet."


async def _agent(db: Database, key: str = KEY, char_limit: int = 2000) -> int:
    state = await AgentStore(db).get_or_create(
        key,
        persona=PERSONA,
        human=HUMAN,
        persona_name="sam",
        human_name="basic",
        char_limit=char_limit,
    )
    return state.id


def _ids(messages: list[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


# --- schema ---------------------------------------------------------------------------------


async def test_migrations_apply_on_a_fresh_file(tmp_path: Path) -> None:
    async with open_database(tmp_path / "archivist.db") as db:
        row = await db.fetchone("PRAGMA user_version")
        assert row is not None and row[0] == len(MIGRATIONS)
        tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master")}
    assert {"agents", "memory_blocks", "messages", "messages_fts"} <= tables


async def test_migration_4_upgrades_a_file_at_version_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    with monkeypatch.context() as patch:
        patch.setattr(agent.db.sqlite_schema, "MIGRATIONS", MIGRATIONS[:3])
        async with open_database(path) as old:
            row = await old.fetchone("PRAGMA user_version")
            assert row is not None and row[0] == 3
            assert await old.fetchone("SELECT 1 FROM sqlite_master WHERE name = 'agents'") is None
            await SourceRegistry(old).open_for_loading(
                "global", "kept", model="m", dim=4, created_by="t"
            )
    async with open_database(path) as db:
        row = await db.fetchone("PRAGMA user_version")
        assert row is not None and row[0] == len(MIGRATIONS)
        assert [s.name for s in await SourceRegistry(db).visible()] == ["kept"]
        agent_id = await _agent(db)
        await RecallStore(db).add(agent_id, Message("user", "upgraded fine"))
        assert (await RecallStore(db).search(agent_id, "upgraded")).total == 1


async def test_a_lone_write_waits_out_an_open_transaction_and_is_not_part_of_it(
    db: Database,
) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    inside = asyncio.Event()

    async def rolled_back() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
            inside.set()
            await asyncio.sleep(0.05)  # the message below is sent meanwhile
            raise RuntimeError("rolled back")

    transaction = asyncio.create_task(rolled_back())
    await inside.wait()
    kept = await recall.add(agent_id, Message("user", "kept"))
    with pytest.raises(RuntimeError, match="rolled back"):
        await transaction
    assert _ids(await recall.in_context(agent_id)) == [kept]
    assert await db.fetchone("SELECT 1 FROM meta WHERE key = 'k'") is None


async def test_reads_see_each_committed_write(db: Database) -> None:
    for n in range(3):
        await db.write("INSERT INTO meta (key, value) VALUES (?, 'v')", (f"k{n}",))
        row = await db.fetchone("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'")
        assert row is not None and row[0] == n + 1


async def test_sqlite_reads_go_to_connections_that_cannot_write(tmp_path: Path) -> None:
    async with open_database(tmp_path / "archivist.db") as db:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await db.fetchall("DELETE FROM meta")


# --- core memory ----------------------------------------------------------------------------


async def test_new_agent_has_initial_blocks_and_get_or_create_keeps_it(db: Database) -> None:
    store = AgentStore(db)
    assert await store.get(KEY) is None
    created = await store.get_or_create(
        KEY, persona=PERSONA, human=HUMAN, persona_name="sam", human_name="basic"
    )
    assert (created.key, created.persona_name, created.human_name) == (KEY, "sam", "basic")
    assert created.summary == ""
    assert created.blocks["persona"].value == PERSONA
    assert created.blocks["human"].char_limit == 2000
    again = await store.get_or_create(KEY, persona="other", human="other")
    assert again == created


async def test_an_agent_cut_short_before_its_blocks_is_completed_on_next_use(
    db: Database,
) -> None:
    store = AgentStore(db)
    # What a process killed between creation's two statements leaves behind.
    await db.write("INSERT INTO agents (key) VALUES (?)", (KEY,))
    assert await store.get(KEY) is None
    created = await store.get_or_create(KEY, persona=PERSONA, human=HUMAN)
    assert {label: b.value for label, b in created.blocks.items()} == {
        "persona": PERSONA,
        "human": HUMAN,
    }


async def test_initial_text_over_the_limit_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="initial human text is 11 characters"):
        await AgentStore(db).get_or_create(KEY, persona="p", human="x" * 11, char_limit=10)


async def test_append_and_replace_edit_and_save_the_block(db: Database) -> None:
    store = AgentStore(db)
    memory = CoreMemory.of(await store.get_or_create(KEY, persona=PERSONA, human=""), store)
    await memory.append("human", "Name: Alice.")
    await memory.append("human", "Likes green tea.")
    assert memory.block("human").value == "Name: Alice.\nLikes green tea."
    await memory.replace("human", "green tea", "black coffee")
    await memory.replace("persona", " careful", "")
    state = await store.get(KEY)
    assert state is not None
    assert state.blocks["human"].value == "Name: Alice.\nLikes black coffee."
    assert state.blocks["persona"].value == "I am Archivist, a librarian."


async def test_the_char_limit_is_enforced_with_the_overshoot_in_the_message(
    db: Database,
) -> None:
    store = AgentStore(db)
    memory = CoreMemory.of(
        await store.get_or_create(KEY, persona="", human="x" * 1985 + "tail!"), store
    )
    with pytest.raises(MemoryEditError) as caught:
        await memory.append("human", "y" * 49)
    assert str(caught.value) == (
        "core_memory_append failed: block 'human' would be 2,040 characters, 40 over its limit"
        " of 2,000; shorten the text or replace something in the block first."
    )
    with pytest.raises(MemoryEditError, match="would be 2,009 characters, 9 over"):
        await memory.replace("human", "tail!", "z" * 24)
    await memory.append("human", "y" * 9)  # exactly at the limit is fine
    assert len(memory.block("human").value) == 2000
    state = await store.get(KEY)
    assert state is not None and state.blocks["human"].value == memory.block("human").value


async def test_bad_edits_explain_themselves_and_change_nothing(db: Database) -> None:
    store = AgentStore(db)
    memory = CoreMemory.of(await store.get_or_create(KEY, persona=PERSONA, human="a b a"), store)
    with pytest.raises(MemoryEditError, match="'xyz' does not occur in block 'persona'"):
        await memory.replace("persona", "xyz", "abc")
    with pytest.raises(MemoryEditError, match="'a' occurs 2 times in block 'human'"):
        await memory.replace("human", "a", "c")
    with pytest.raises(MemoryEditError, match="the text to replace is empty"):
        await memory.replace("human", "", "c")
    with pytest.raises(MemoryEditError, match="the text to append is empty"):
        await memory.append("human", "  ")
    for edit in (memory.append("system", "x"), memory.replace("goals", "a", "b")):
        with pytest.raises(MemoryEditError, match=r"there is no block .*'persona' and 'human'"):
            await edit
    state = await store.get(KEY)
    assert state is not None
    assert (state.blocks["persona"].value, state.blocks["human"].value) == (PERSONA, "a b a")


async def test_render_shows_each_block_with_its_size(db: Database) -> None:
    store = AgentStore(db)
    memory = CoreMemory.of(await store.get_or_create(KEY, persona=PERSONA, human="Alice"), store)
    assert memory.render() == (
        f'<persona characters="{len(PERSONA)}/2,000">\n{PERSONA}\n</persona>\n'
        '<human characters="5/2,000">\nAlice\n</human>'
    )


async def test_core_memory_and_summary_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "archivist.db"
    async with open_database(path) as db:
        store = AgentStore(db)
        state = await store.get_or_create(KEY, persona=PERSONA, human=HUMAN)
        await CoreMemory.of(state, store).replace("human", HUMAN, "Alice, a chemist.")
        await store.set_summary(state.id, "Alice asked about titration.")
    async with open_database(path) as db:
        reopened = await AgentStore(db).get(KEY)
        assert reopened is not None
        assert reopened.blocks["human"].value == "Alice, a chemist."
        assert reopened.summary == "Alice asked about titration."


async def test_reset_forgets_the_conversation(db: Database) -> None:
    store = AgentStore(db)
    recall = RecallStore(db)
    state = await store.get_or_create(KEY, persona=PERSONA, human=HUMAN)
    memory = CoreMemory.of(state, store)
    await memory.append("human", "Alice.")
    for i in range(3):
        await recall.add(state.id, Message("user", f"walrus {i}"))
    await store.set_summary(state.id, "talked about walruses")

    assert await store.reset(state.id) == 3
    kept = await store.get(KEY)
    assert kept is not None and kept.summary == ""
    assert kept.blocks["human"].value == f"{HUMAN}\nAlice."
    assert await recall.count(state.id) == 0
    assert await recall.in_context(state.id) == []
    assert (await recall.search(state.id, "walrus")).total == 0

    await recall.add(state.id, Message("user", "walrus again"))
    assert await store.reset(state.id, keep_core=False) == 1
    fresh = await store.get(KEY)
    assert fresh is not None and fresh.blocks["human"].value == HUMAN
    assert (await recall.search(state.id, "walrus")).total == 0

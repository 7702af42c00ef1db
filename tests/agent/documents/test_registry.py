"""The source registry on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.db import open_database
from agent.db.sqlite_schema import MIGRATIONS
from agent.documents.names import InvalidName, check_conversation, workspace_of
from agent.documents.registry import GLOBAL_SCOPE, SourceRegistry
from agent.errors import EmbeddingMismatch, SourceNotFound, SourceNotVisible
from tests.conftest import STATES

INJECTIONS = ['x") or (source_id >= 0', "x' or 1=1 --", "gri'; DROP TABLE sources; --", "%", "_"]


@pytest.fixture(params=STATES)
def state(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def registry(state_location: str | Path) -> AsyncIterator[SourceRegistry]:
    async with open_database(state_location) as db:
        yield SourceRegistry(db)


async def _ready_source(registry: SourceRegistry, scope: str, name: str, sha: str = "a") -> int:
    source = await registry.open_for_loading(scope, name, model="m", dim=4, created_by="t")
    row = await registry.add_file(
        source.id, name=f"{name}.pdf", sha256=sha, size=10, loaded_by="t", owner="h:1"
    )
    assert row is not None
    await registry.finish_file(row.id, pages=3, passages=7)
    return source.id


async def test_schema_is_versioned_and_reopening_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "archivist.db"
    async with open_database(path) as db:
        row = await db.fetchone("PRAGMA user_version")
        assert row is not None and row[0] == len(MIGRATIONS)
        journal = await db.fetchone("PRAGMA journal_mode")
        assert journal is not None and journal[0] == "wal"
        await SourceRegistry(db).open_for_loading(
            "global", "kept", model="m", dim=4, created_by="t"
        )
    async with open_database(path) as db:
        assert [s.name for s in await SourceRegistry(db).visible()] == ["kept"]


async def test_new_source_is_loading_until_a_file_is_ready(registry: SourceRegistry) -> None:
    source = await registry.open_for_loading("global", "gri", model="m", dim=4, created_by="t")
    assert source.status == "loading"
    row = await registry.add_file(
        source.id, name="gri.pdf", sha256="abc", size=10, loaded_by="t", owner="h:1"
    )
    assert row is not None
    assert (await registry.read_scope([source.id])).source_ids == ()
    await registry.finish_file(row.id, pages=3, passages=7)
    ready = await registry.resolve("global", "gri")
    assert (ready.status, ready.files, ready.pages, ready.passages) == ("ready", 1, 3, 7)
    assert (await registry.read_scope([source.id])).source_ids == (source.id,)


async def test_same_content_twice_is_refused_but_a_failed_attempt_can_be_retried(
    registry: SourceRegistry,
) -> None:
    source_id = await _ready_source(registry, "global", "gri", sha="same")
    again = await registry.add_file(
        source_id, name="copy.pdf", sha256="same", size=10, loaded_by="t", owner="h:1"
    )
    assert again is None
    other = await registry.add_file(
        source_id, name="b.pdf", sha256="other", size=10, loaded_by="t", owner="h:1"
    )
    assert other is not None
    await registry.fail_file(other, "broken")
    retry = await registry.add_file(
        source_id, name="b.pdf", sha256="other", size=10, loaded_by="t", owner="h:1"
    )
    assert retry is not None and retry.id != other.id


async def test_a_file_still_loading_into_a_ready_source_stays_hidden(
    registry: SourceRegistry,
) -> None:
    source_id = await _ready_source(registry, "global", "gri")
    loading = await registry.add_file(
        source_id, name="more.pdf", sha256="b", size=10, loaded_by="t", owner="h:1"
    )
    assert loading is not None
    scope = await registry.read_scope([source_id])
    assert scope.source_ids == (source_id,)
    assert scope.excluded_file_ids == (loading.id,)
    await registry.fail_file(loading, "broken")  # hidden now as a cleanup, not as loading
    assert (await registry.read_scope([source_id, 999])).excluded_file_ids == (loading.id,)


async def test_attach_is_idempotent_and_detach_removes_the_link(registry: SourceRegistry) -> None:
    source_id = await _ready_source(registry, "global", "gri")
    assert await registry.attach("console:local:default", source_id, attached_by="t") is True
    assert await registry.attach("console:local:default", source_id, attached_by="t") is False
    assert [s.id for s in await registry.attached("console:local:default")] == [source_id]
    assert await registry.detach("console:local:default", source_id) is True
    assert await registry.detach("console:local:default", source_id) is False
    assert await registry.attached("console:local:default") == []


async def test_delete_removes_links_and_queues_passage_removal(registry: SourceRegistry) -> None:
    source_id = await _ready_source(registry, "global", "gri")
    await registry.attach("a:b:c", source_id, attached_by="t")
    await registry.delete(source_id)
    assert await registry.attached("a:b:c") == []
    assert await registry.files(source_id) == []
    assert [(s, f) for _, s, f in await registry.pending_cleanups()] == [(source_id, None)]
    # Ids are never reused, so queued deletions can't hit a newer source.
    newer = await _ready_source(registry, "global", "gri")
    assert newer > source_id


async def test_scopes_see_their_own_sources_and_global_ones(registry: SourceRegistry) -> None:
    await _ready_source(registry, "discord:1", "guide")
    await _ready_source(registry, "slack:T1", "guide")
    await _ready_source(registry, GLOBAL_SCOPE, "handbook")
    assert {(s.scope, s.name) for s in await registry.visible("discord:1")} == {
        ("discord:1", "guide"),
        (GLOBAL_SCOPE, "handbook"),
    }
    assert (await registry.resolve("slack:T1", "guide")).scope == "slack:T1"
    with pytest.raises(SourceNotFound):
        await registry.resolve("discord:2", "guide")


async def test_own_scope_wins_over_a_global_source_of_the_same_name(
    registry: SourceRegistry,
) -> None:
    await _ready_source(registry, GLOBAL_SCOPE, "guide")
    own = await _ready_source(registry, "discord:1", "guide", sha="b")
    assert (await registry.resolve("discord:1", "guide")).id == own


@pytest.mark.parametrize("name", INJECTIONS)
async def test_crafted_names_find_nothing(registry: SourceRegistry, name: str) -> None:
    await _ready_source(registry, GLOBAL_SCOPE, "gri")
    with pytest.raises(SourceNotFound, match="No such source"):
        await registry.resolve(GLOBAL_SCOPE, name)


async def test_control_characters_are_not_echoed(registry: SourceRegistry) -> None:
    with pytest.raises(SourceNotFound) as caught:
        await registry.resolve(GLOBAL_SCOPE, "evil\x1b[2Jname\n" + "x" * 500)
    message = str(caught.value)
    assert "\x1b" not in message and "\n" not in message and len(message) < 160


async def test_loading_with_another_embedding_model_is_refused(registry: SourceRegistry) -> None:
    await _ready_source(registry, GLOBAL_SCOPE, "gri")
    with pytest.raises(EmbeddingMismatch, match="embedded with m"):
        await registry.open_for_loading(GLOBAL_SCOPE, "gri", model="other", dim=8, created_by="t")


async def test_a_source_whose_only_file_failed_is_marked_failed(registry: SourceRegistry) -> None:
    source = await registry.open_for_loading(GLOBAL_SCOPE, "gri", model="m", dim=4, created_by="t")
    row = await registry.add_file(
        source.id, name="a.pdf", sha256="a", size=1, loaded_by="t", owner="h:1"
    )
    assert row is not None
    await registry.fail_file(row, "Milvus went away")
    failed = await registry.resolve(GLOBAL_SCOPE, "gri")
    assert (failed.status, failed.error) == ("failed", "Milvus went away")
    assert [f for _, _, f in await registry.pending_cleanups()] == [row.id]


async def test_a_cancelled_writer_leaves_the_connection_usable(tmp_path: Path) -> None:
    async with open_database(tmp_path / "archivist.db") as db:
        registry = SourceRegistry(db)
        started = asyncio.Event()

        async def writer() -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
                started.set()
                await asyncio.Event().wait()  # cancelled here, mid-transaction

        task = asyncio.create_task(writer())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(3):  # cancelled at BEGIN too: the next writers still get through
            begin = asyncio.create_task(registry.attach("a:b:c", 1, attached_by="t"))
            await asyncio.sleep(0)
            begin.cancel()
            with pytest.raises((asyncio.CancelledError, Exception)):
                await begin
        source = await registry.open_for_loading(
            "global", "after", model="m", dim=4, created_by="t"
        )
        assert source.name == "after"
        assert await db.fetchone("SELECT 1 FROM meta WHERE key = 'k'") is None


BAD_NAMES = [
    "",
    "   ",
    "x" * 5000,
    "red\x1b[31mtext",
    "two\nlines",
    "tab\there",
    "evil\u202efdp.exe",
    " padded",
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_a_name_no_one_could_type_or_see_is_refused(
    registry: SourceRegistry, name: str
) -> None:
    with pytest.raises(InvalidName) as refused:
        await registry.open_for_loading("global", name, model="m", dim=4, created_by="t")
    assert str(refused.value).endswith(".")
    assert all(ch.isprintable() for ch in str(refused.value))
    assert await registry.visible() == []


async def test_names_of_every_script_and_emoji_are_fine(registry: SourceRegistry) -> None:
    for name in ("Руководство", "手册 v2", "👩‍🔬 lab notes", "x" * 100, "%", "a'b"):
        await registry.open_for_loading("global", name, model="m", dim=4, created_by="t")
    assert len(await registry.visible()) == 6


@pytest.mark.parametrize("scope", ["nonsense", "", "discord:", "discord:1:2", "Global", "slack"])
async def test_a_scope_that_is_no_workspace_is_refused(
    registry: SourceRegistry, scope: str
) -> None:
    with pytest.raises(InvalidName, match="is not a workspace"):
        await registry.open_for_loading(scope, "gri", model="m", dim=4, created_by="t")


def test_conversation_keys_and_their_workspaces() -> None:
    for key in ("console:local:default", "discord:1:10", "slack:T1:C1"):
        check_conversation(key)
    for key in ("bogus", "discord:1", "slack:T1:C1:x", "console:local:", "mail:a:b"):
        with pytest.raises(InvalidName, match="is not a conversation key"):
            check_conversation(key)
    assert workspace_of("discord:1:10") == "discord:1"
    assert workspace_of("slack:T1:C1") == "slack:T1"
    assert workspace_of("console:local:default") is None


async def test_attach_refuses_a_source_the_conversations_workspace_cannot_see(
    registry: SourceRegistry,
) -> None:
    theirs = await _ready_source(registry, "discord:1", "gri")
    shared = await _ready_source(registry, "global", "faq", sha="b")
    with pytest.raises(SourceNotVisible) as refused:
        await registry.attach("slack:2:C9", theirs, attached_by="t")
    assert "workspace discord:1" in str(refused.value) and "'slack:2:C9'" in str(refused.value)
    assert isinstance(refused.value, SourceNotFound)
    assert await registry.attached("slack:2:C9") == []
    assert await registry.attach("slack:2:C9", shared, attached_by="t") is True
    assert await registry.attach("discord:1:10", theirs, attached_by="t") is True
    # The console is the operator's own: it may read any workspace's sources.
    assert await registry.attach("console:local:default", theirs, attached_by="t") is True

"""An agent's notes: searched with its attachments, private to it, never listed as a source."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.db import open_database
from agent.db.sqlite_schema import MIGRATIONS
from agent.documents.library import Library
from agent.documents.loads import FileInput
from agent.documents.registry import SourceRegistry
from agent.errors import PassageTooLong
from agent.mind.loop import Incoming
from agent.mind.notes import NOTES_SOURCE, notes_scope, save_note
from bot.app import open_core
from bot.config import Settings
from tests import pdfs
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI

OURS = "discord:1:10"
THEIRS = "discord:1:11"
NOTE = "The team standup moved to 9:30 on Mondays."


@pytest.fixture
def backend() -> str:
    """Notes use the same archive code on both backends: Lite is enough here."""
    return "lite"


async def test_a_note_is_searched_by_its_agent_only(library: Library) -> None:
    await save_note(library, OURS, NOTE)
    ours = await library.search_attached(OURS, "when is the standup?")
    theirs = await library.search_attached(THEIRS, "when is the standup?")
    assert [r.text for r in ours.results] == [NOTE]
    assert [r.citation for r in ours.results] == ["saved notes"]
    assert theirs.total == 0 and theirs.results == []


async def test_the_same_note_twice_is_stored_once(library: Library) -> None:
    await save_note(library, OURS, NOTE)
    await save_note(library, OURS, NOTE)
    source, files = await library.source(notes_scope(OURS), NOTES_SOURCE)
    assert source.passages == 1 and len(files) == 1
    assert (await library.search_attached(OURS, "standup")).total == 1


async def test_a_note_longer_than_a_passage_is_refused_and_nothing_is_kept(
    library: Library,
) -> None:
    with pytest.raises(PassageTooLong, match="word pieces"):
        await save_note(library, OURS, "standup " * 400)
    assert await library.links.attached(OURS) == []
    assert await library.sources(None) == []


async def test_notes_count_as_archive_but_are_not_listed_as_attached_sources(
    settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 3)
    fake_openai.reply(
        tool_calls=[
            ("archival_memory_insert", {"content": NOTE}),
            ("send_message", {"message": "Saved."}),
        ]
    )
    async with open_core(with_llm(settings, fake_openai)) as core:
        await core.load(OURS, "discord:1", "manual", [FileInput(manual)], by="t")
        reply = await core.ask(Incoming(OURS, "discord:1", "Standup is at 9:30 on Mondays."))
        assert reply.messages == ["Saved."]
        view = await core.memory(OURS)
        assert [s.name for s in await core.attached(OURS)] == ["manual"] == view.sources
        loaded = (await core.sources("discord:1"))[0].passages
        assert view.passages == loaded + 1


async def test_notes_saved_before_they_were_attachments_are_attached_on_upgrade(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        for script in MIGRATIONS[:5]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 5")
        conn.execute(
            "INSERT INTO sources (scope, name, status, embedding_model, embedding_dim,"
            " created_by) VALUES (?, 'notes', 'ready', 'm', 384, ?)",
            (notes_scope(OURS), OURS),
        )
    async with open_database(path) as db:
        attached = await SourceRegistry(db).attached(OURS)
    assert [(s.scope, s.name) for s in attached] == [(notes_scope(OURS), NOTES_SOURCE)]

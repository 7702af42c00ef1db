"""The facade adapters call: real SQLite, Milvus Lite and embeddings; a scripted fake LLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core import AgentNotFound, Core, FileInput, Incoming
from bot.config import Settings
from bot.state import open_state
from tests import pdfs
from tests.fake_openai import FakeOpenAI

SCOPE = "global"
HERE = "console:local:here"
THERE = "console:local:there"


@pytest.fixture
def backend() -> str:
    """The facade does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


async def _load_manual(core: Core, tmp_path: Path) -> None:
    path = pdfs.make_pdf(tmp_path / "manual.pdf", ["Turbines need fresh oil every spring."])
    report = await core.load(HERE, SCOPE, "manual", [FileInput(path)], by="test")
    assert report.failed == []


async def test_the_stored_memory_refuses_an_unknown_conversation_and_creates_nothing(
    core: Core, settings: Settings
) -> None:
    # What `archivist agents show` reads, from the state file beside the running core.
    async with open_state(settings) as state:
        with pytest.raises(AgentNotFound, match="No agent for conversation 'console:local:here'"):
            await state.memory(HERE)
        assert await state.agents.list() == []
        view = await core.memory(HERE)
        assert (view.messages, view.sources, view.passages) == (0, [], 0)
        assert [a.key for a in await state.agents.list()] == [HERE]
        assert await state.memory(HERE) == view


async def test_reset_forgets_the_messages_and_keeps_the_attached_sources(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    await _load_manual(core, tmp_path)
    fake_openai.reply(tool_calls=[("send_message", {"message": "Hello."})])
    await core.ask(Incoming(HERE, SCOPE, "hi", speaker_id="alice", speaker_name="Alice"))
    before = await core.memory(HERE)
    assert before.messages > 0 and before.sources == ["manual"]
    assert await core.reset(HERE) == before.messages
    after = await core.memory(HERE)
    assert (after.messages, after.sources, after.passages) == (0, ["manual"], before.passages)
    found = await core.search(HERE, "fresh oil")
    assert [r.document for r in found.results] == ["manual.pdf"]


async def test_attaching_twice_reports_the_second_as_not_new(core: Core, tmp_path: Path) -> None:
    await _load_manual(core, tmp_path)
    assert (await core.attach(HERE, SCOPE, "manual", by="test"))[1] is False  # the load did
    source, new = await core.attach(THERE, SCOPE, "manual", by="test")
    assert (source.name, new) == ("manual", True)
    again, new = await core.attach(THERE, SCOPE, "manual", by="test")
    assert (again.id, new) == (source.id, False)
    assert [s.name for s in await core.attached(THERE)] == ["manual"]


async def test_detaching_what_is_not_attached_reports_false(core: Core, tmp_path: Path) -> None:
    await _load_manual(core, tmp_path)
    source, removed = await core.detach(THERE, SCOPE, "manual")
    assert (source.name, removed) == ("manual", False)
    assert (await core.detach(HERE, SCOPE, "manual"))[1] is True
    assert (await core.detach(HERE, SCOPE, "manual"))[1] is False
    assert await core.attached(HERE) == []
    assert [s.name for s in await core.sources(SCOPE)] == ["manual"]  # detaching deletes nothing

"""A reply that cites no handle gets the sources it draws on, and only those."""

from __future__ import annotations

from pathlib import Path

from agent.core import Core
from agent.documents.loads import FileInput
from agent.mind.attribution import drawn_from
from tests import pdfs
from tests.agent.mind.helpers import KEY, ask
from tests.fake_openai import FakeOpenAI


async def test_an_answer_without_handles_cites_the_passage_it_repeats(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 10)
    await core.load(KEY, "global", "manual", [FileInput(path)], by="test")
    marker = pdfs.manual_marker(7)
    fake_openai.reply(tool_calls=[("archival_memory_search", {"query": marker})])
    fake_openai.reply(tool_calls=[("send_message", {"message": f"Per the manual: {marker}"})])
    reply = await core.ask(ask("what is that frequency?"))

    assert reply.messages == [f"Per the manual: {marker}"]  # no handle written into its words
    assert [(c.document, c.page) for c in reply.citations] == [("manual.pdf", 7)]


async def test_small_talk_after_a_search_gets_no_source(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4)
    await core.load(KEY, "global", "manual", [FileInput(path)], by="test")
    fake_openai.reply(tool_calls=[("archival_memory_search", {"query": "greeting"})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "Hello Alice, nice to meet you!"})])
    reply = await core.ask(ask("hi, I am Alice"))
    assert reply.citations == []


def test_the_passages_drawn_on_are_ranked_by_shared_words_and_need_enough_of_them() -> None:
    shown = {
        3: "The pump valve opens at 4750 kilopascal when the relay is armed.",
        4: "Valves are cleaned every fortnight with warm water.",
        5: "Unrelated text about gardening and tomatoes.",
    }
    assert drawn_from("The valve opens at 4750 kilopascal once the relay is armed.", shown) == [3]
    assert drawn_from("Yes.", shown) == []
    assert drawn_from("Tomatoes are nice, I think, but who knows really.", shown) == []

"""A reply that only names a passage ("[1]"), or none at all, reaches the person as the passage,
quoted and cited."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core import Core
from agent.documents.loads import FileInput
from agent.mind.output import NO_ANSWER, NO_ANSWER_BUT
from agent.mind.pointing import closest_passage, excerpt, only_handles
from tests import pdfs
from tests.agent.mind.helpers import KEY, ask
from tests.fake_openai import FakeOpenAI


async def _searched(core: Core, fake_openai: FakeOpenAI, tmp_path: Path) -> str:
    """A manual loaded and the model's first step a search for page 7's marker; the marker."""
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 10)
    await core.load(KEY, "global", "manual", [FileInput(path)], by="test")
    marker = pdfs.manual_marker(7)
    fake_openai.reply(tool_calls=[("archival_memory_search", {"query": marker})])
    return marker


@pytest.mark.parametrize("how", ["text", "send_message"])
async def test_a_bare_handle_is_answered_with_the_passage_it_names(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path, how: str
) -> None:
    marker = await _searched(core, fake_openai, tmp_path)
    if how == "text":
        fake_openai.reply("[1]")
    else:
        fake_openai.reply(tool_calls=[("send_message", {"message": "[1]."})])
    frequency = marker.split()[1]
    reply = await core.ask(ask(f"what is the {frequency} frequency in hertz?"))

    [said] = reply.messages
    assert said.startswith("From the documents:\n“")
    assert marker in said and said.endswith("” [1]")
    assert [(c.document, c.page) for c in reply.citations] == [("manual.pdf", 7)]
    assert len(fake_openai.requests) == 2  # no step spent telling the model off


async def test_a_handle_no_search_showed_is_not_quoted_and_the_model_is_told(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    await _searched(core, fake_openai, tmp_path)
    fake_openai.reply("[42]")
    fake_openai.reply("The manual does not say.")
    reply = await core.ask(ask("what is the colour of the pump?"))

    assert reply.messages == ["The manual does not say."]
    told = [m for m in fake_openai.requests[-1]["messages"] if "[not shown]" in str(m)]
    assert told and "only names a passage" in str(told[-1]["content"])


async def test_a_turn_left_without_words_shows_the_passage_that_matches_the_question(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    marker = await _searched(core, fake_openai, tmp_path)
    fake_openai.reply("")  # recorded: the small model often ends a turn so, its passage in view
    frequency = marker.split()[1]
    reply = await core.ask(ask(f"what is the {frequency} frequency in hertz?"))

    [said] = reply.messages
    assert said.startswith(NO_ANSWER_BUT + "\n“") and marker in said
    assert [(c.document, c.page) for c in reply.citations] == [("manual.pdf", 7)]


async def test_small_talk_left_without_words_gets_the_plain_apology(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    await _searched(core, fake_openai, tmp_path)
    fake_openai.reply("")
    reply = await core.ask(ask("hello there, lovely weather"))
    assert reply.messages == [NO_ANSWER] and reply.citations == []


def test_only_handles_reads_pointers_not_sentences() -> None:
    assert only_handles("[2]") == [2]
    assert only_handles(" ([1], [3]). ") == [1, 3]
    assert only_handles("[1][1]") == [1]
    assert only_handles("See [2].") is None
    assert only_handles("It is 42 [2].") is None
    assert only_handles("") is None


def test_the_excerpt_starts_at_the_sentence_the_question_is_about() -> None:
    passage = (
        "Pumps need care.  The relay arms the pump valve at 4750 kilopascal. "
        "Then the valve opens. Clean it every fortnight with warm water."
    )
    assert excerpt(passage, "at what pressure does the relay arm the valve?") == (
        "The relay arms the pump valve at 4750 kilopascal. Then the valve opens."
        " Clean it every fortnight with warm water."
    )
    long = "word " * 200
    cut = excerpt(long, "anything")
    assert cut.endswith(" …") and len(cut) <= 330


def test_a_passage_stands_in_for_an_answer_only_when_it_shares_two_terms() -> None:
    shown = {4: "Valves are cleaned weekly.", 5: "The name of the main valve is V3."}
    assert closest_passage(shown, "what is my name?") is None
    assert closest_passage(shown, "what is the name of the main valve?") == (
        "“The name of the main valve is V3.” [5]"
    )

"""The agent loop end to end: real SQLite, Milvus Lite and embeddings; a scripted fake LLM."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.core import Core
from agent.documents.loads import FileInput
from agent.mind.loop import SEARCH_ONLY_LABEL, Incoming, Stop
from agent.mind.window import SUMMARY_PROMPT
from bot.app import open_core
from bot.config import Settings
from tests import pdfs
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI, chat_completion

KEY = "console:local:default"


@pytest.fixture
def backend() -> str:
    """The loop does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


@pytest.fixture
async def core(settings: Settings, fake_openai: FakeOpenAI) -> AsyncIterator[Core]:
    async with open_core(with_llm(settings, fake_openai, max_steps=4)) as c:
        yield c


def ask(text: str, conversation: str = KEY, speaker: str = "Alice") -> Incoming:
    return Incoming(conversation, "global", text, speaker_id=speaker.lower(), speaker_name=speaker)


def last_tool_result(body: dict[str, Any]) -> str:
    return str([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])


async def _manual(core: Core, tmp_path: Path) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 10)
    await core.load(KEY, "global", "manual", [FileInput(path)], by="test")


async def test_a_full_turn_searches_the_archive_and_cites_the_page(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    await _manual(core, tmp_path)
    question = pdfs.manual_marker(7).replace(" is ", " is? ")
    fake_openai.reply(
        "The user asks about a frequency; search the archive.",
        tool_calls=[("archival_memory_search", {"query": question, "request_heartbeat": True})],
    )

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        result = last_tool_result(body)
        handle = re.search(r"\[(\d+)\] manual\.pdf p\.7", result)
        assert handle, result
        return chat_completion(
            tool_calls=[("send_message", {"message": f"It is 4777 hertz [{handle.group(1)}]."})]
        )

    fake_openai.respond_with(answer)
    reply = await core.ask(ask(question))

    assert reply.messages == [reply.messages[0]] and "4777 hertz" in reply.messages[0]
    assert [(c.document, c.page) for c in reply.citations] == [("manual.pdf", 7)]
    assert reply.notice is None
    first, second = fake_openai.requests
    assert {t["function"]["name"] for t in first["tools"]} >= {"archival_memory_search"}
    system = first["messages"][0]["content"]
    assert "1 attached sources" not in system and "manual" in system
    shown = last_tool_result(second)
    total = (await core.sources("global"))[0].passages
    assert f"Showing 5 of {total} passages (page 0 of {-(-total // 5)}" in shown


async def test_heartbeat_chains_stop_at_max_steps_with_a_message(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.respond_with(
        lambda body: chat_completion(
            "Keep looking.",
            tool_calls=[("conversation_search", {"query": "tea", "request_heartbeat": True})],
        )
    )
    reply = await core.ask(ask("What did I say about tea?"))
    assert len(fake_openai.requests) == 4  # max_steps
    assert reply.messages == [
        "I could not finish within 4 steps: please ask again, perhaps more narrowly."
    ]
    assert reply.thoughts == ["Keep looking."] * 4  # the monologue is not shown as an answer
    assert reply.stop is Stop.STEP_LIMIT and not reply.failed
    fake_openai.reply(tool_calls=[("send_message", {"message": "Sorry about that."})])
    await core.ask(ask("Still there?"))
    said = [m["content"] for m in fake_openai.requests[-1]["messages"] if m["role"] == "assistant"]
    assert reply.messages[0] in said  # what the person was told is remembered


async def test_a_failing_function_still_answers_its_call(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("conversation_search", {"query": "x", "page": -1})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "Fine."})])
    reply = await core.ask(ask("hi"))
    assert reply.messages == ["Fine."]
    assert "page must be between 0 and" in last_tool_result(fake_openai.requests[-1])


async def test_malformed_and_unknown_calls_go_back_to_the_model(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("archival_memory_search", '{"query": "unterminated')])
    fake_openai.reply(tool_calls=[("launch_rockets", {"count": 3})])
    fake_openai.reply(tool_calls=[("core_memory_append", {"label": "human", "oops": 1})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "Sorted."})])
    reply = await core.ask(ask("hello"))
    assert reply.messages == ["Sorted."]
    errors = [last_tool_result(body) for body in fake_openai.requests[1:]]
    assert errors[0].startswith("Error:") and "JSON" in errors[0]
    assert "no function 'launch_rockets'" in errors[1]
    assert errors[2].startswith("Error:") and "oops" in errors[2]


async def test_plain_text_without_send_message_is_still_delivered(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply("Hello there, I answer in plain text.")
    reply = await core.ask(ask("hi"))
    assert reply.messages == ["Hello there, I answer in plain text."]


async def test_core_memory_edits_reach_the_next_prompt(core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(
        tool_calls=[
            ("core_memory_append", {"label": "human", "content": "Alice likes green tea."}),
            ("send_message", {"message": "Noted."}),
        ]
    )
    fake_openai.reply(tool_calls=[("send_message", {"message": "You like green tea."})])
    await core.ask(ask("I like green tea."))
    await core.ask(ask("What do I like?"))
    assert "Alice likes green tea." in fake_openai.requests[-1]["messages"][0]["content"]
    assert "Alice likes green tea." in (await core.memory(KEY)).core


async def test_a_too_long_append_is_refused_with_the_reason(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(
        tool_calls=[("core_memory_append", {"label": "human", "content": "x" * 3000})]
    )
    fake_openai.reply(tool_calls=[("send_message", {"message": "That was too long."})])
    await core.ask(ask("remember this"))
    assert "over its limit of 2,000" in last_tool_result(fake_openai.requests[-1])


async def test_llm_failure_is_one_sentence_and_the_message_is_kept(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(500)
    reply = await core.ask(ask("Are you there?"))
    assert reply.messages == [] and reply.notice is not None
    assert "language model" in reply.notice.lower() or "server" in reply.notice.lower()
    fake_openai.reply(tool_calls=[("send_message", {"message": "Back again."})])
    await core.ask(ask("And now?"))
    history = [m for m in fake_openai.requests[-1]["messages"] if m["role"] == "user"]
    assert [m["content"] for m in history] == ["[Alice] Are you there?", "[Alice] And now?"]


async def test_notes_saved_to_archival_memory_are_found_again(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(
        tool_calls=[
            ("archival_memory_insert", {"content": "The team standup moved to 9:30 on Mondays."}),
            ("send_message", {"message": "Saved."}),
        ]
    )
    fake_openai.reply(
        tool_calls=[
            ("archival_memory_search", {"query": "when is the standup?", "request_heartbeat": True})
        ]
    )
    fake_openai.reply(tool_calls=[("send_message", {"message": "9:30 on Mondays [1]."})])
    await core.ask(ask("Remember: standup is at 9:30 on Mondays now."))
    reply = await core.ask(ask("When is standup?"))
    assert "standup moved to 9:30" in last_tool_result(fake_openai.requests[-1])
    assert [c.label for c in reply.citations] == ["saved notes"]


async def test_an_overflowing_context_is_summarised_and_nothing_is_lost(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    def respond(body: dict[str, Any]) -> dict[str, Any]:
        if body["messages"][0]["content"] == SUMMARY_PROMPT:
            return chat_completion("Alice told many long stories about her garden.")
        return chat_completion(tool_calls=[("send_message", {"message": "I see."})])

    fake_openai.respond_with(respond)
    story = "In my garden the tomatoes grow tall and the beans climb the fence. " * 12
    async with open_core(with_llm(settings, fake_openai, context_window=2048)) as core:
        for i in range(12):
            await core.ask(ask(f"Story {i}: {story}"))
        view = await core.memory(KEY)
        found = await core.search(KEY, "tomatoes")  # archive search: nothing attached
    summaries = [b for b in fake_openai.requests if b["messages"][0]["content"] == SUMMARY_PROMPT]
    assert summaries, "the window never overflowed"
    last_prompt = fake_openai.requests[-1]["messages"]
    assert "Alice told many long stories" in last_prompt[0]["content"]
    assert len(json.dumps(last_prompt)) // 3 < 2048
    assert view.messages >= 12 * 3  # user, assistant, tool result: all still in recall memory
    assert found.total == 0


async def test_search_only_mode_without_a_language_model(
    settings: Settings, tmp_path: Path
) -> None:
    async with open_core(with_llm(settings, None)) as core:
        assert core.search_only
        await _manual(core, tmp_path)
        reply = await core.ask(ask(pdfs.manual_marker(4)))
    assert reply.messages[0].startswith(SEARCH_ONLY_LABEL)
    assert reply.citations[0].page == 4
    assert pdfs.manual_marker(4) in reply.messages[0]


async def test_a_slow_conversation_does_not_hold_up_another(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    release = asyncio.Event()
    slow_started = asyncio.Event()

    async def respond(body: dict[str, Any]) -> dict[str, Any]:
        text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if "slow" in text:
            slow_started.set()
            await release.wait()
        return chat_completion(tool_calls=[("send_message", {"message": f"re: {text}"})])

    fake_openai.respond_with(respond)
    slow = asyncio.create_task(core.ask(ask("slow question", conversation="console:a:1")))
    await slow_started.wait()
    fast = await core.ask(ask("fast question", conversation="console:b:2"))
    assert fast.messages == ["re: [Alice] fast question"] and not slow.done()
    release.set()
    assert (await slow).messages == ["re: [Alice] slow question"]


async def test_one_conversation_is_answered_in_order(core: Core, fake_openai: FakeOpenAI) -> None:
    first_arrived = asyncio.Event()
    release_first = asyncio.Event()

    async def respond(body: dict[str, Any]) -> dict[str, Any]:
        text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if text.endswith("m0"):
            first_arrived.set()
            await release_first.wait()
        return chat_completion(tool_calls=[("send_message", {"message": f"re {text}"})])

    fake_openai.respond_with(respond)
    first = asyncio.create_task(core.ask(ask("m0")))
    await first_arrived.wait()
    second = asyncio.create_task(core.ask(ask("m1")))
    third = asyncio.create_task(core.ask(ask("m2")))
    release_first.set()
    replies = [await first, await second, await third]
    assert [r.messages for r in replies] == [[f"re [Alice] m{i}"] for i in range(3)]
    # Each later turn saw the earlier answers: they ran one after another.
    assert "re [Alice] m0" in json.dumps(fake_openai.requests[1]["messages"])
    assert "re [Alice] m1" in json.dumps(fake_openai.requests[2]["messages"])


async def test_what_the_agent_said_is_found_by_conversation_search(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("send_message", {"message": "The launch code is marmalade."})])
    fake_openai.reply(
        tool_calls=[("conversation_search", {"query": "marmalade", "request_heartbeat": True})]
    )
    fake_openai.reply(tool_calls=[("send_message", {"message": "I said marmalade."})])
    await core.ask(ask("Tell me a code word."))
    await core.ask(ask("What code word did you say?"))
    found = last_tool_result(fake_openai.requests[-1])
    assert "Showing 1 of 1 messages" in found and "The launch code is marmalade." in found
    prompt = json.dumps(fake_openai.requests[-1]["messages"])
    assert prompt.count("The launch code is marmalade.") == 2  # the call, and the search result

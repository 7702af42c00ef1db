"""The context window end to end: real SQLite, Milvus Lite and embeddings; a scripted fake LLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.core import Core, FileInput
from agent.mind.llm_errors import CONTEXT_OVERFLOW
from agent.mind.window import SHORTENED
from bot.app import open_core
from bot.config import Settings
from tests import pdfs
from tests.agent.mind.helpers import GARDEN, KEY, ask, i_see
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI, chat_completion


def _is_summary(body: dict[str, Any]) -> bool:
    return str(body["messages"][0]["content"]).startswith("You maintain the long-term summary")


async def test_an_overflowing_context_is_summarised_and_nothing_is_lost(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    def respond(body: dict[str, Any]) -> dict[str, Any]:
        if _is_summary(body):
            return chat_completion("Alice told many long stories about her garden.")
        return i_see(body)

    fake_openai.respond_with(respond)
    story = GARDEN * 12
    async with open_core(with_llm(settings, fake_openai, context_window=2048)) as core:
        for i in range(12):
            await core.ask(ask(f"Story {i}: {story}"))
        view = await core.memory(KEY)
        found = await core.search(KEY, "tomatoes")  # archive search: nothing attached
    summaries = [b for b in fake_openai.requests if _is_summary(b)]
    assert summaries, "the window never overflowed"
    last_prompt = fake_openai.requests[-1]["messages"]
    assert "Alice told many long stories" in last_prompt[0]["content"]
    assert len(json.dumps(last_prompt)) // 3 < 2048
    assert view.messages >= 12 * 3  # user, assistant, tool result: all still in recall memory
    assert found.total == 0


async def test_a_server_window_smaller_than_configured_is_learnt_from_its_refusal(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    def respond(body: dict[str, Any]) -> dict[str, Any]:
        if _is_summary(body):
            return chat_completion("Alice told stories about her garden.")
        return i_see(body)

    fake_openai.respond_with(respond)
    story = GARDEN * 12
    async with open_core(with_llm(settings, fake_openai, context_window=8192)) as core:
        for i in range(6):
            await core.ask(ask(f"Story {i}: {story}"))
        assert not any(_is_summary(b) for b in fake_openai.requests)
        fake_openai.fail(
            400,
            message="This model's maximum context length is 2048 tokens. However, you"
            " requested 3391 tokens. Please reduce the length of the messages.",
        )
        reply = await core.ask(ask("Story 6: and then it rained."))
    assert reply.messages == ["I see."] and not reply.failed
    assert any(_is_summary(b) for b in fake_openai.requests)
    retried = fake_openai.requests[-1]["messages"]
    assert len(json.dumps(retried)) // 4 < 2048 - 2048 // 4  # room left for the answer


async def test_a_prompt_still_refused_after_summarising_gets_its_own_sentence(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(400, message="the request exceeds the available context size", times=2)
    reply = await core.ask(ask("hello"))
    assert reply.failed and reply.notice == CONTEXT_OVERFLOW
    assert "model name" not in reply.notice


async def test_earlier_turns_results_are_shortened_before_anything_is_summarised(
    settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    pages = [
        " ".join(
            f"Pump {n} valve {i} opens at {n * 10 + i} kilopascal in mode {i}." for i in range(30)
        )
        for n in range(1, 7)
    ]
    manual = pdfs.make_pdf(tmp_path / "pumps.pdf", pages)

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        if _is_summary(body):
            return chat_completion("A summary of the talk about pumps and valves.")
        if body["messages"][-1]["role"] == "user":
            query = str(body["messages"][-1]["content"])
            return chat_completion(tool_calls=[("archival_memory_search", {"query": query})])
        return chat_completion(tool_calls=[("send_message", {"message": "Noted."})])

    fake_openai.respond_with(respond)
    async with open_core(with_llm(settings, fake_openai, context_window=6144)) as core:
        await core.load(KEY, "global", "pumps", [FileInput(manual)], by="test")
        for n in range(1, 5):
            await core.ask(ask(f"At what pressure does valve 3 of pump {n} open?"))
    assert not [b for b in fake_openai.requests if _is_summary(b)]
    sent = fake_openai.requests[-1]["messages"]
    results = [m["content"] for m in sent if m["role"] == "tool" and m["content"] != "Sent."]
    assert len(results) == 4
    assert all(r.endswith(SHORTENED) for r in results[:-1])
    newest = results[-1]
    assert not newest.endswith(SHORTENED) and "Showing 5 of" in newest


async def test_a_small_window_gets_fewer_search_results_and_a_smaller_reply_bound(
    settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    pages = [f"Valve {n} opens at {n * 10} kilopascal. " * 20 for n in range(1, 9)]
    manual = pdfs.make_pdf(tmp_path / "valves.pdf", pages)
    fake_openai.reply(tool_calls=[("archival_memory_search", {"query": "valve pressure"})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "Noted."})])
    async with open_core(with_llm(settings, fake_openai, context_window=4096)) as core:
        await core.load(KEY, "global", "valves", [FileInput(manual)], by="test")
        await core.ask(ask("When do the valves open?"))
    [result] = [m["content"] for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool"]
    assert result.startswith("Showing 3 of")  # 5 configured; a page is a quarter of 4,096 at most
    # Each step may write an eighth of the window (1,024 configured), the rest is the prompt's.
    assert {body["max_tokens"] for body in fake_openai.requests} == {512}


async def test_memory_pressure_is_told_once_and_only_when_earlier_messages_could_leave(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.respond_with(i_see)
    # With the instructions and schemas, past 75 % of a 4,096 window but not 90 %.
    story = GARDEN * 35
    async with open_core(with_llm(settings, fake_openai, context_window=4096)) as core:
        await core.ask(ask(f"Story: {story}"))
        await core.ask(ask("And the beans?"))
        await core.ask(ask("And the fence?"))

    def pressure(body: dict[str, Any]) -> list[str]:
        return [
            str(m["content"]) for m in body["messages"] if "[memory pressure]" in str(m["content"])
        ]

    first, second, third = fake_openai.requests
    # The first turn fills the window by itself: nothing older could be summarised to make
    # room, and a small model only says such a warning back.
    assert pressure(first) == []
    [told] = pressure(second)
    assert "the oldest messages will soon be summarised" in told
    # Told in the statistics, before the person's newest message, not after it.
    assert second["messages"][-1]["content"].endswith("And the beans?")
    # Told once until a summary makes room, as MemGPT does, not at every turn.
    assert pressure(third) == []

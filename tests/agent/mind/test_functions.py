"""The functions the model calls, through whole turns on Milvus Lite with a scripted fake LLM."""

from __future__ import annotations

import json

from agent.core import Core
from tests.agent.mind.helpers import KEY, ask, last_tool_result
from tests.fake_openai import FakeOpenAI


async def test_a_failing_function_still_answers_its_call(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("conversation_search", {"query": "x", "page": -1})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "Fine."})])
    reply = await core.ask(ask("hi"))
    assert reply.messages == ["Fine."]
    assert "page must be between 0 and" in last_tool_result(fake_openai.requests[-1])


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

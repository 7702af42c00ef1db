"""A turn stopped while a function runs: the conversation goes on with every call paired.

Strict servers refuse a prompt in which an assistant message's tool call has no result, so
one call left unanswered would lock a conversation out until ``/reset`` (issue 11).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import aiohttp
import pytest

from agent.mind.functions import FUNCTIONS, TurnContext
from agent.mind.loop import Stop
from bot.app import open_core
from bot.config import Settings
from tests.agent.mind.helpers import answered_as_interrupted, ask
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI


async def test_a_turn_cancelled_during_a_call_leaves_a_conversation_that_goes_on(
    settings: Settings, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = asyncio.Event()

    @functools.wraps(FUNCTIONS["conversation_search"])
    async def held(ctx: TurnContext, **arguments: Any) -> str:
        running.set()
        await asyncio.Event().wait()  # until the turn is cancelled
        raise AssertionError("unreachable")

    monkeypatch.setitem(FUNCTIONS, "conversation_search", held)
    fake_openai.reply("Look it up.", tool_calls=[("conversation_search", {"query": "vault"})])
    configured = with_llm(settings, fake_openai, max_steps=4)
    async with open_core(configured) as core:
        asked = asyncio.create_task(core.ask(ask("What was the vault code?")))
        await running.wait()  # the call is stored and running; its result is not
        await core.close()  # as at shutdown once the grace has run out
        assert (await asked).stop is Stop.SHUTTING_DOWN
    (call,) = fake_openai.responses[0]["choices"][0]["message"]["tool_calls"]

    fake_openai.reply(tool_calls=[("send_message", {"message": "Ask me again, please."})])
    async with open_core(configured) as core:  # a restart on the same state
        reply = await core.ask(ask("Hello again?"))

    assert reply.messages == ["Ask me again, please."] and not reply.failed
    sent = fake_openai.requests[-1]["messages"]
    asked_at = answered_as_interrupted(sent, call)
    assert {"role": "user", "content": "[Alice] Hello again?"} in sent[asked_at + 2 :]


async def test_the_fake_server_refuses_unpaired_calls_as_openai_does(
    fake_openai: FakeOpenAI,
) -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    unpaired = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "user", "content": "still there?"},
    ]
    stray = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "content": "x", "tool_call_id": "a"},
    ]
    fake_openai.reply("never sent")
    async with aiohttp.ClientSession() as session:
        statuses = []
        for messages in (unpaired, stray):
            body = {"model": "fake-model", "messages": messages}
            async with session.post(f"{fake_openai.base_url}/chat/completions", json=body) as r:
                statuses.append((r.status, (await r.json())["error"]))
    assert statuses == [
        (
            400,
            {
                "message": "An assistant message with 'tool_calls' must be followed by tool"
                " messages responding to each 'tool_call_id'. The following tool_call_ids did"
                " not have response messages: call_9",
                "type": "invalid_request_error",
                "param": "messages",
                "code": None,
            },
        ),
        (
            400,
            {
                "message": "Invalid parameter: messages with role 'tool' must be a response to a"
                " preceeding message with 'tool_calls'.",
                "type": "invalid_request_error",
                "param": "messages.[1].role",
                "code": None,
            },
        ),
    ]
    assert fake_openai.pending == 1  # refused before the script was consumed

"""The context window end to end: real SQLite, Milvus Lite and embeddings; a scripted fake LLM."""

from __future__ import annotations

import json
from typing import Any

from bot.app import open_core
from bot.config import Settings
from tests.agent.mind.helpers import KEY, ask
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
        return chat_completion(tool_calls=[("send_message", {"message": "I see."})])

    fake_openai.respond_with(respond)
    story = "In my garden the tomatoes grow tall and the beans climb the fence. " * 12
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

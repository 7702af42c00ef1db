"""What a real small model (Qwen2.5-Coder-1.5B on llama.cpp) answered, replayed: each quirk it
showed in bench/real_model.py is handled without a model (tests/fixtures/llm_responses/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.core import Core
from agent.mind.output import CUT_MARK, NO_ANSWER
from bot.app import open_core
from bot.config import Settings
from tests.agent.mind.helpers import GARDEN, ask, i_see
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "llm_responses"


def recorded(name: str) -> tuple[int, dict[str, Any]]:
    fixture = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return int(fixture["status"]), fixture["body"]


def told(fake: FakeOpenAI, request: int) -> str:
    return str(fake.requests[request]["messages"][-1]["content"])


async def test_a_double_braced_call_in_text_is_run(core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.recorded(*recorded("double-braced-call"))
    fake_openai.reply(tool_calls=[("send_message", {"message": "I am Archivist."})])
    reply = await core.ask(ask("who are you?"))
    assert reply.messages == ["I am Archivist."]
    called = [m for m in fake_openai.requests[1]["messages"] if m.get("tool_calls")]
    assert called[-1]["tool_calls"][0]["function"]["name"] == "conversation_search"


async def test_a_fenced_json_call_is_run_and_no_fence_is_shown(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.recorded(*recorded("fenced-json-call"))
    [message] = (await core.ask(ask("hi, who are you?"))).messages
    assert message.startswith("Hello! I am an Archivist") and "```" not in message


async def test_an_invented_tool_response_or_a_prompt_line_is_never_shown(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    for quirk in ("own-tool-response", "prompt-line-said-back"):
        fake_openai.recorded(*recorded(quirk))
        fake_openai.reply(tool_calls=[("send_message", {"message": f"Fine after {quirk}."})])
        reply = await core.ask(ask("why is R called R?"))
        assert reply.messages == [f"Fine after {quirk}."]
        assert "not shown to anyone" in told(fake_openai, -1)


async def test_a_reply_cut_off_for_length_ends_at_a_sentence(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.recorded(*recorded("length-cut-off"))
    [message] = (await core.ask(ask("how do I build R from source?"))).messages
    assert message.endswith("." + CUT_MARK)


async def test_the_same_apology_turn_after_turn_is_said_once(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    status, body = recorded("refusal-after-correction")
    fake_openai.recorded(status, body)
    first = await core.ask(ask("what is a factor?"))
    for _ in range(2):
        fake_openai.recorded(status, body)
    second = await core.ask(ask("and a data frame?"))
    assert first.messages == ["I am sorry, but I cannot answer your question."]
    assert second.messages == [NO_ANSWER]


async def test_a_placeholder_summary_is_replaced_by_an_extract(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    _, none = recorded("summary-none")

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        if str(body["messages"][0]["content"]).startswith("You maintain the long-term summary"):
            return dict(none)
        return i_see(body)

    fake_openai.respond_with(respond)
    story = GARDEN * 12
    async with open_core(with_llm(settings, fake_openai, context_window=2048)) as core:
        for i in range(8):
            await core.ask(ask(f"Story {i}: {story}"))
    system = str(fake_openai.requests[-1]["messages"][0]["content"])
    assert "Summary of earlier conversation: Alice: Story 0" in system
    assert "(none)" not in system


async def test_llama_cpps_context_refusal_teaches_the_window_and_the_turn_goes_on(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.respond_with(i_see)
    story = GARDEN * 6
    async with open_core(with_llm(settings, fake_openai, context_window=8192)) as core:
        for i in range(4):
            await core.ask(ask(f"Story {i}: {story}"))
        fake_openai.recorded(*recorded("context-size-exceeded"))
        reply = await core.ask(ask("And then it rained."))
    assert reply.messages == ["I see."] and not reply.failed
    assert len(json.dumps(fake_openai.requests[-1]["messages"])) // 4 < 1024


async def test_replies_nobody_saw_leave_the_prompt_when_the_turn_ends(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    # Recorded: with the unshown repeats, the notes about them and the fallback apology left
    # in view, the small model answered every later question with the same apology.
    status, body = recorded("refusal-after-correction")
    fake_openai.recorded(status, body)
    await core.ask(ask("what is a factor?"))
    for _ in range(2):
        fake_openai.recorded(status, body)
    assert (await core.ask(ask("and a data frame?"))).messages == [NO_ANSWER]
    fake_openai.reply("A list of columns of equal length.")
    await core.ask(ask("what is a data frame?"))
    prompt = [str(m.get("content")) for m in fake_openai.requests[-1]["messages"]]
    assert prompt.count("I am sorry, but I cannot answer your question.") == 1  # the shown one
    assert not any(NO_ANSWER in text or "[not shown]" in text for text in prompt)
    assert sum("and a data frame?" in text for text in prompt) == 1  # the question stays


async def test_an_empty_reply_leaves_the_prompt_with_its_turn(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    # Recorded: shown its own empty reply, the small model answered the next questions with
    # nothing too.
    fake_openai.recorded(*recorded("empty-reply"))
    assert (await core.ask(ask("why is R called R?"))).messages == [NO_ANSWER]
    fake_openai.reply("After its two authors, Robert and Ross.")
    await core.ask(ask("who wrote it?"))
    prompt = fake_openai.requests[-1]["messages"]
    assistants = [m for m in prompt if m["role"] == "assistant"]
    assert assistants == [], assistants  # neither the empty reply nor the apology
    assert sum("why is R called R?" in str(m["content"]) for m in prompt) == 1

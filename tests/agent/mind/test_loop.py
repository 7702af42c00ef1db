"""The agent loop end to end: real SQLite, Milvus Lite and embeddings; a scripted fake LLM."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from agent.core import Core
from agent.documents.loads import FileInput
from agent.mind.loop import MODEL_DOWN_LABEL, SEARCH_ONLY_LABEL, Stop
from agent.mind.output import CUT_MARK, NO_ANSWER
from bot.app import open_core
from bot.config import Settings
from tests import pdfs
from tests.agent.mind.helpers import KEY, ask, last_tool_result
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI, chat_completion


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
    stats = [m["content"] for m in first["messages"] if m["role"] == "system"][-1]
    assert stats.startswith("[memory]") and "from manual" in stats
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
    # The label opens the reply; a notice saying it again is shown twice (issue 13, item 13).
    assert reply.notice is None and not reply.failed


async def test_with_the_model_down_the_reply_is_the_sources_best_passages_labelled(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    await _manual(core, tmp_path)
    fake_openai.fail(500)
    reply = await core.ask(ask(pdfs.manual_marker(6)))
    assert reply.failed and reply.stop is Stop.MODEL_UNAVAILABLE
    assert reply.notice is not None and "language model" in reply.notice.lower()
    [text] = reply.messages
    assert text.startswith(MODEL_DOWN_LABEL) and pdfs.manual_marker(6) in text
    assert reply.citations[0].page == 6


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


def _cut_for_length(content: str) -> dict[str, Any]:
    body = chat_completion(content)
    body["choices"][0]["finish_reason"] = "length"
    return body


async def test_a_call_written_as_text_is_run_like_a_native_one(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(
        'Let me answer.\n<tool_call>\n{"name": "send_message", "arguments":'
        ' {"message": "Hello, I am here to help."}}\n</tool_call>'
    )
    reply = await core.ask(ask("hi"))
    assert reply.messages == ["Hello, I am here to help."]
    assert reply.thoughts == ["Let me answer."]


async def test_markup_is_never_shown_and_the_model_hears_why_once(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply("<tools>\n\n</tools>")
    fake_openai.reply("<tools>\n\n</tools>")
    reply = await core.ask(ask("What does chapter 2 say?"))
    assert reply.messages == [NO_ANSWER] and not reply.failed
    told = fake_openai.requests[1]["messages"][-1]
    assert told["role"] == "system" and "not shown to anyone" in told["content"]
    fake_openai.reply(tool_calls=[("send_message", {"message": "Chapter 2 covers setup."})])
    assert (await core.ask(ask("And now?"))).messages == ["Chapter 2 covers setup."]


async def test_a_reply_cut_for_length_ends_at_a_sentence(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.respond_with(
        lambda body: _cut_for_length("The answer is on page 4. It explains the option and wh")
    )
    reply = await core.ask(ask("Where is it?"))
    assert reply.messages == ["The answer is on page 4." + CUT_MARK]


async def test_a_long_reply_said_twice_is_not_delivered_again(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    same = "The configuration lives in config.toml; every key is listed with its default."
    fake_openai.reply(tool_calls=[("send_message", {"message": same})])
    fake_openai.reply(tool_calls=[("send_message", {"message": same})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "Ports are set in [server]."})])
    assert (await core.ask(ask("Where is the configuration?"))).messages == [same]
    reply = await core.ask(ask("And the port?"))
    assert reply.messages == ["Ports are set in [server]."]
    assert "previous reply" in last_tool_result(fake_openai.requests[-1])


async def test_the_prompt_grows_at_its_end_so_a_server_cache_reuses_it(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    for text in ("One.", "Two."):
        fake_openai.reply(tool_calls=[("send_message", {"message": f"Noted: {text}"})])
        await core.ask(ask(text))
    first, second = (body["messages"] for body in fake_openai.requests)
    without_stats = [m for m in first if not str(m["content"]).startswith("[memory]")]
    assert len(without_stats) == len(first) - 1
    assert second[: len(without_stats)] == without_stats  # all of it reused, system prompt first
    assert second[-2]["content"].startswith("[memory]") and second[-1]["content"] == "[Alice] Two."


async def test_every_request_bounds_the_reply_length(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("send_message", {"message": "Fine."})])
    llm = settings.llm.model_copy(update={"max_tokens": 300, "temperature": 0.2})
    async with open_core(with_llm(settings.model_copy(update={"llm": llm}), fake_openai)) as core:
        await core.ask(ask("hello"))
    [body] = fake_openai.requests
    assert body["max_tokens"] == 300 and body["temperature"] == 0.2


async def test_search_first_gives_the_model_the_passages_before_its_first_step(
    settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    agent = settings.agent.model_copy(update={"search_first": True})
    fake_openai.reply(tool_calls=[("send_message", {"message": "Nothing attached yet."})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "It is 4777 hertz."})])
    async with open_core(with_llm(settings.model_copy(update={"agent": agent}), fake_openai)) as c:
        await c.ask(ask("hello"))  # nothing attached: nothing searched
        await _manual(c, tmp_path)
        await c.ask(ask(pdfs.manual_marker(7)))
    alone, searched = (body["messages"] for body in fake_openai.requests)
    assert not any(m.get("tool_calls") for m in alone)
    call = [m for m in searched if m.get("tool_calls")][-1]["tool_calls"][0]["function"]
    assert call["name"] == "archival_memory_search"
    assert json.loads(call["arguments"]) == {"query": pdfs.manual_marker(7)}
    assert "manual.pdf p.7" in searched[-1]["content"] and searched[-1]["role"] == "tool"


async def test_search_first_reads_a_follow_up_with_the_question_it_follows(
    settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    agent = settings.agent.model_copy(update={"search_first": True})
    fake_openai.reply(tool_calls=[("send_message", {"message": "It is 4777 hertz."})])
    fake_openai.reply(tool_calls=[("send_message", {"message": "Also 4777 hertz."})])
    async with open_core(with_llm(settings.model_copy(update={"agent": agent}), fake_openai)) as c:
        await _manual(c, tmp_path)
        await c.ask(ask(pdfs.manual_marker(7)))
        await c.ask(ask("and what about the next one?"))
    first, follow_up = (
        json.loads(
            [m for m in body["messages"] if m.get("tool_calls")][-1]["tool_calls"][0]["function"][
                "arguments"
            ]
        )["query"]
        for body in fake_openai.requests
    )
    assert first == pdfs.manual_marker(7)
    assert follow_up == f"{pdfs.manual_marker(7)} and what about the next one?"

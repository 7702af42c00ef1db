"""Replies shown as the model writes them: streamed completions and their previews."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from agent.core import Core
from agent.mind.llm import OpenAILLM, StreamDelta
from agent.mind.loop import Stop
from agent.mind.preview import ReplyPreview, partial_string
from tests.agent.mind.helpers import ask
from tests.fake_openai import FakeOpenAI

ANSWER = "The breaker trips when the pump draws more than forty amperes for three seconds."


class Watcher:
    """Collects what a turn shows while it runs; ``saw`` is set once ``expect`` appears."""

    def __init__(self, expect: str = "") -> None:
        self.shown: list[str] = []
        self.expect = expect
        self.saw = asyncio.Event()

    def __call__(self, text: str) -> None:
        self.shown.append(text)
        if self.expect and self.expect in text:
            self.saw.set()


async def test_the_reply_is_shown_while_the_model_is_still_writing_it(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    release = fake_openai.reply_held(tool_calls=[("send_message", {"message": ANSWER})], after=40)
    watcher = Watcher(expect="The breaker trips")
    turn = asyncio.ensure_future(core.ask(replace(ask("when does it trip?"), on_partial=watcher)))
    await asyncio.wait_for(watcher.saw.wait(), 10)
    assert not turn.done()
    release.set()
    reply = await turn

    assert reply.messages == [ANSWER] and reply.stop is Stop.ANSWERED
    assert watcher.shown[-1] == ANSWER
    assert all(ANSWER.startswith(text) for text in watcher.shown)
    assert [len(t) for t in watcher.shown] == sorted({len(t) for t in watcher.shown})
    assert fake_openai.requests[0]["stream"] is True


async def test_a_call_written_as_text_is_previewed_and_monologue_never_is(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(
        "I should look in the archive first.",
        tool_calls=[("archival_memory_search", {"query": "breaker", "request_heartbeat": True})],
    )
    fake_openai.reply(
        '<tool_call>{"name": "send_message", "arguments": '
        '{"message": "It says \\"trip\\" at 40 A \\u00e9\\ud83d\\ude00."}}</tool_call>'
    )
    watcher = Watcher()
    reply = await core.ask(replace(ask("when does it trip?"), on_partial=watcher))

    assert reply.messages == ['It says "trip" at 40 A \u00e9\U0001f600.']
    assert watcher.shown[-1] == reply.messages[0]
    assert not any("archive" in text or "{" in text for text in watcher.shown)


async def test_without_a_watcher_nothing_is_streamed(core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(tool_calls=[("send_message", {"message": ANSWER})])
    reply = await core.ask(ask("when does it trip?"))
    assert reply.messages == [ANSWER]
    assert "stream" not in fake_openai.requests[0]


async def test_a_stream_cut_off_midway_is_the_model_being_unreachable(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply_cut("I am thinking about the question at some length.", after=20)
    reply = await core.ask(replace(ask("when does it trip?"), on_partial=Watcher()))
    assert reply.stop is Stop.MODEL_UNAVAILABLE
    assert reply.notice is not None and "127.0.0.1" not in reply.notice
    fake_openai.reply(tool_calls=[("send_message", {"message": "Back again."})])
    await core.ask(ask("and now?"))
    history = [m for m in fake_openai.requests[-1]["messages"] if m["role"] == "user"]
    assert [m["content"] for m in history] == ["[Alice] when does it trip?", "[Alice] and now?"]


async def test_a_streamed_completion_is_the_one_a_plain_request_returns(
    fake_openai: FakeOpenAI,
) -> None:
    llm = OpenAILLM(
        model="fake-model", base_url=fake_openai.base_url, api_key=None, timeout=5, max_retries=0
    )
    calls = [("archival_memory_search", {"query": "breaker \u00e9", "page": 1})]
    messages = [{"role": "user", "content": "when does it trip?"}]
    try:
        fake_openai.reply("Searching.", tool_calls=calls, prompt_tokens=77)
        plain = await llm.complete(messages, [])
        fake_openai.reply("Searching.", tool_calls=calls, prompt_tokens=77)
        deltas: list[StreamDelta] = []
        streamed = await llm.complete(messages, [], on_delta=deltas.append)
    finally:
        await llm.aclose()
    assert streamed.content == plain.content == "Searching."
    assert [(c.name, c.arguments) for c in streamed.tool_calls] == [
        (c.name, c.arguments) for c in plain.tool_calls
    ]
    assert streamed.tool_calls[0].id.startswith("call_")
    assert (streamed.prompt_tokens, streamed.finish_reason) == (77, "tool_calls")
    assert "".join(d.content for d in deltas) == "Searching."
    assert len(deltas) > 3  # it came in pieces


@pytest.mark.parametrize(
    ("arrived", "shown"),
    [
        ('{"message": "Hel', "Hel"),
        ('{"message": "a\\', "a"),  # an escape cut in half waits
        ('{"message": "a\\u00', "a"),
        ('{"message": "line\\nnext \\"q\\" \\\\ end"}', 'line\nnext "q" \\ end'),
        ('{"message" :  "x\\ud83d', "x"),  # half a surrogate pair waits for the other
        ('{"other": "y"}', None),
    ],
)
def test_partial_json_strings_decode_as_far_as_they_have_arrived(
    arrived: str, shown: str | None
) -> None:
    assert partial_string(arrived, "message") == shown


def test_a_second_message_in_one_step_does_not_replace_the_first_preview() -> None:
    shown: list[str] = []
    preview = ReplyPreview(shown.append)
    preview(StreamDelta(call=0, name="send_message", arguments='{"message": "First'))
    preview(StreamDelta(call=0, arguments=' one."}'))
    preview(StreamDelta(call=1, name="send_message", arguments='{"message": "Second"}'))
    assert shown == ["First", "First one."]

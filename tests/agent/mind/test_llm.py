"""The LLM seam through the real openai client, against the fake OpenAI server."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from agent.mind.llm import LLM, LLMUnavailable, OpenAILLM, build_llm
from tests.fake_openai import FakeOpenAI, chat_completion

API_KEY = "sk-llm-test-never-log-me-7731"
MODEL = "fake-model"
MESSAGES = [
    {"role": "system", "content": "You are the Archivist."},
    {"role": "user", "content": "What does the manual say about backups?"},
]
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "archival_memory_search",
        "description": "Search the channel's documents.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}


def connect(base_url: str | None, *, max_retries: int = 0, timeout: float = 5.0) -> OpenAILLM:
    return OpenAILLM(
        model=MODEL, base_url=base_url, api_key=API_KEY, timeout=timeout, max_retries=max_retries
    )


@pytest.fixture
async def llm(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAILLM]:
    built = connect(fake_openai.base_url)
    yield built
    await built.aclose()


async def test_a_tool_call_comes_through_with_its_id_name_and_arguments(
    fake_openai: FakeOpenAI, llm: OpenAILLM
) -> None:
    fake_openai.reply(
        "The user asks about backups; search first.",
        tool_calls=[("archival_memory_search", {"query": "backups", "page": 0})],
        prompt_tokens=321,
    )
    completion = await llm.complete(MESSAGES, [SEARCH_TOOL])

    assert completion.content == "The user asks about backups; search first."
    (call,) = completion.tool_calls
    assert call.id == fake_openai.responses[0]["choices"][0]["message"]["tool_calls"][0]["id"]
    assert call.name == "archival_memory_search"
    assert json.loads(call.arguments) == {"query": "backups", "page": 0}
    assert completion.prompt_tokens == 321
    assert completion.completion_tokens == fake_openai.responses[0]["usage"]["completion_tokens"]
    (request,) = fake_openai.requests
    assert request["model"] == MODEL
    assert request["messages"] == MESSAGES
    assert request["tools"] == [SEARCH_TOOL]
    assert request["tool_choice"] == "auto"


async def test_a_plain_text_reply_has_no_tool_calls_and_no_tools_are_sent(
    fake_openai: FakeOpenAI, llm: OpenAILLM
) -> None:
    fake_openai.reply("Backups run nightly.")
    completion = await llm.complete(MESSAGES, [])
    assert completion.content == "Backups run nightly."
    assert completion.tool_calls == []
    assert completion.prompt_tokens is not None and completion.prompt_tokens > 0
    (request,) = fake_openai.requests
    assert "tools" not in request
    assert "tool_choice" not in request


async def test_several_tool_calls_and_malformed_arguments_come_through_raw(
    fake_openai: FakeOpenAI, llm: OpenAILLM
) -> None:
    broken = '{"query": "backups", '
    fake_openai.reply(
        None,
        tool_calls=[("archival_memory_search", broken), ("send_message", {"text": "hi"})],
    )
    completion = await llm.complete(MESSAGES, [SEARCH_TOOL])
    assert completion.content is None
    assert [call.name for call in completion.tool_calls] == [
        "archival_memory_search",
        "send_message",
    ]
    assert completion.tool_calls[0].arguments == broken
    assert len({call.id for call in completion.tool_calls}) == 2


async def test_a_429_with_retry_after_is_retried_by_the_client(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(429, retry_after=1)
    fake_openai.reply("after the wait")
    llm = connect(fake_openai.base_url, max_retries=2)
    try:
        completion = await llm.complete(MESSAGES, [])
    finally:
        await llm.aclose()
    assert completion.content == "after the wait"
    assert len(fake_openai.requests) == 2
    assert fake_openai.pending == 0


def _script_rate_limit(fake: FakeOpenAI) -> None:
    fake.fail(429, retry_after=0.01, times=2)


def _script_server_error(fake: FakeOpenAI) -> None:
    fake.fail(500, retry_after=0.01, times=2)


def _script_bad_gateway(fake: FakeOpenAI) -> None:
    fake.fail(502, retry_after=0.01, times=2)


def _script_unauthorized(fake: FakeOpenAI) -> None:
    # Some servers echo the key they refused: it must still not reach the log.
    fake.fail(401, message=f"Incorrect API key provided: {API_KEY}")


def _script_forbidden(fake: FakeOpenAI) -> None:
    fake.fail(403)


def _script_unknown_model(fake: FakeOpenAI) -> None:
    fake.fail(404, message=f"The model {MODEL!r} does not exist")


def _script_not_json(fake: FakeOpenAI) -> None:
    fake.malformed("<html>502 Bad Gateway</html>")


def _script_no_choices(fake: FakeOpenAI) -> None:
    fake.malformed(json.dumps({"id": "x", "object": "chat.completion", "choices": []}))


def _script_foreign_json(fake: FakeOpenAI) -> None:
    fake.malformed(json.dumps({"result": {"text": "hello"}, "echo": API_KEY}))


def _script_tool_call_without_name(fake: FakeOpenAI) -> None:
    body = chat_completion(tool_calls=[("archival_memory_search", "{}")])
    del body["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
    fake.malformed(json.dumps(body))


@pytest.mark.parametrize(
    ("script", "kind", "attempts", "says"),
    [
        (_script_rate_limit, "rate_limited", 2, "rate-limiting"),
        (_script_server_error, "server_error", 2, "HTTP 500"),
        (_script_bad_gateway, "server_error", 2, "HTTP 502"),
        (_script_unauthorized, "auth", 1, "check the API key"),
        (_script_forbidden, "auth", 1, "check the API key"),
        (_script_unknown_model, "bad_request", 1, repr(MODEL)),
        (_script_not_json, "server_error", 1, "not JSON"),
        (_script_no_choices, "server_error", 1, "no choices"),
        (_script_foreign_json, "server_error", 1, "no choices"),
        (_script_tool_call_without_name, "server_error", 1, "no name"),
    ],
    ids=lambda value: value.__name__.removeprefix("_script_") if callable(value) else None,
)
async def test_failures_become_llm_unavailable_without_leaking_the_key(
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    script: Callable[[FakeOpenAI], None],
    kind: str,
    attempts: int,
    says: str,
) -> None:
    script(fake_openai)
    llm = connect(fake_openai.base_url, max_retries=1)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as caught:
            await llm.complete(MESSAGES, [SEARCH_TOOL])
    finally:
        await llm.aclose()
    assert caught.value.kind == kind
    assert says in str(caught.value)
    # The sentence reaches channel members: the endpoint's address is for the log only.
    assert "127.0.0.1" not in str(caught.value)
    assert len(fake_openai.requests) == attempts
    assert fake_openai.pending == 0
    failures = [record for record in caplog.records if record.name == "agent.mind.llm"]
    assert len(failures) == 1, "one log line per failure"
    assert MODEL in failures[0].getMessage()
    assert fake_openai.base_url in failures[0].getMessage()
    assert API_KEY not in caplog.text
    assert API_KEY not in str(caught.value)


async def test_a_request_that_hangs_times_out(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    release = fake_openai.hang()
    llm = connect(fake_openai.base_url, timeout=0.5)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as caught:
            await llm.complete(MESSAGES, [])
    finally:
        release.set()
        await llm.aclose()
    assert caught.value.kind == "timeout"
    assert str(caught.value) == (
        "The language model did not answer within 0.5 s: try again in a moment."
    )
    assert API_KEY not in caplog.text


async def test_a_closed_port_is_unreachable_for_people_and_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    llm = connect(base_url)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as caught:
            await llm.complete(MESSAGES, [])
    finally:
        await llm.aclose()
    assert caught.value.kind == "connection"
    assert str(caught.value) == "The language model is unreachable: try again later."
    [failure] = [record for record in caplog.records if record.name == "agent.mind.llm"]
    assert base_url in failure.getMessage()
    assert "ConnectError" in failure.getMessage(), "the log says what failed underneath"
    assert API_KEY not in str(caught.value)
    assert API_KEY not in caplog.text


async def test_the_fake_fails_loudly_when_nothing_is_scripted(
    fake_openai: FakeOpenAI, llm: OpenAILLM
) -> None:
    with pytest.raises(LLMUnavailable) as caught:
        await llm.complete(MESSAGES, [])
    assert caught.value.kind == "server_error"
    assert len(fake_openai.requests) == 1


async def test_the_request_is_the_chat_api_body_with_the_key_as_bearer_token() -> None:
    seen: list[tuple[str | None, dict[str, Any]]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), await request.json()))
        return web.json_response(chat_completion("ok"))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    llm = connect(f"http://127.0.0.1:{port}/v1")
    try:
        await llm.complete(MESSAGES, [SEARCH_TOOL])
        await llm.complete(MESSAGES, [])
    finally:
        await llm.aclose()
        await runner.cleanup()
    assert seen == [
        (
            f"Bearer {API_KEY}",
            {
                "model": MODEL,
                "messages": MESSAGES,
                "tools": [SEARCH_TOOL],
                "tool_choice": "auto",
                "max_tokens": 1024,
            },
        ),
        (f"Bearer {API_KEY}", {"model": MODEL, "messages": MESSAGES, "max_tokens": 1024}),
    ]


async def test_a_custom_responder_answers_once_the_queue_is_empty(
    fake_openai: FakeOpenAI, llm: OpenAILLM
) -> None:
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return chat_completion(f"you said: {body['messages'][-1]['content']}")

    fake_openai.reply("scripted first")
    fake_openai.respond_with(echo)
    first = await llm.complete(MESSAGES, [])
    second = await llm.complete([{"role": "user", "content": "ping"}], [])
    assert (first.content, second.content) == ("scripted first", "you said: ping")


async def test_the_fake_lists_its_models(fake_openai: FakeOpenAI) -> None:
    import openai

    async with openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key=API_KEY) as client:
        models = await client.models.list()
    assert [model.id for model in models.data] == [MODEL]


async def test_build_llm_needs_an_endpoint(fake_openai: FakeOpenAI) -> None:
    def build(base_url: str | None, api_key: str | None) -> LLM | None:
        return build_llm(
            base_url=base_url, model=MODEL, api_key=api_key, timeout=5.0, max_retries=0
        )

    assert build(None, None) is None
    keyless = build(fake_openai.base_url, None)
    assert isinstance(keyless, OpenAILLM)
    assert keyless.model == MODEL
    fake_openai.reply("a local server needs no key")
    try:
        assert (await keyless.complete(MESSAGES, [])).content == "a local server needs no key"
    finally:
        await keyless.aclose()
    hosted = build(None, API_KEY)
    assert isinstance(hosted, OpenAILLM)
    await hosted.aclose()

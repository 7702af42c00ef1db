"""A scriptable OpenAI-compatible chat server on 127.0.0.1, for tests that drive a real client.

Queue what the model should answer, in order, then point ``openai.AsyncOpenAI``
(or anything else) at :attr:`FakeOpenAI.base_url`::

    async with FakeOpenAI() as fake:
        fake.reply(tool_calls=[("archival_memory_search", {"query": "rust"})])
        fake.fail(429, retry_after=1)
        fake.reply("done")

Each ``POST /v1/chat/completions`` consumes the next scripted response; when
the queue is empty the :meth:`FakeOpenAI.respond_with` handler answers, and
without one the request gets HTTP 500 "fake server: nothing scripted" so that
the test fails loudly. Every request body is kept in :attr:`FakeOpenAI.requests`.

Like a strict provider, the server refuses with HTTP 400 a request whose messages break the
tool-call pairing rule (see :func:`tool_pairing_error`), before any scripted response is used;
``FakeOpenAI(strict_tool_pairing=False)`` accepts them. ``POST /v1/embeddings`` answers each
text with a vector made from its hash, for tests that point the embedder here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

__all__ = [
    "FakeOpenAI",
    "ScriptedToolCall",
    "chat_completion",
    "fake_openai",
    "tool_pairing_error",
]

ScriptedToolCall = tuple[str, dict[str, Any] | str]
"""``(function name, arguments)``; a str is sent verbatim (for malformed JSON)."""

Responder = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]
_Scripted = Callable[[dict[str, Any]], Awaitable[web.Response]]

# Unique across the whole run, so ids never collide between conversations.
_call_ids = itertools.count(1)
_completion_ids = itertools.count(1)


def chat_completion(
    content: str | None = None,
    *,
    tool_calls: Sequence[ScriptedToolCall] = (),
    model: str = "fake-model",
    prompt_tokens: int = 0,
    completion_tokens: int | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` body as the real API sends it.

    Tool calls get ids ``call_1``, ``call_2``… in the order they are built.
    ``completion_tokens`` defaults to a rough estimate from the text sent.
    """
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    calls: list[dict[str, Any]] = [
        {
            "id": f"call_{next(_call_ids)}",
            "type": "function",
            "function": {
                "name": name,
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            },
        }
        for name, arguments in tool_calls
    ]
    if calls:
        message["tool_calls"] = calls
    if completion_tokens is None:
        sent = (content or "") + "".join(call["function"]["arguments"] for call in calls)
        completion_tokens = max(1, len(sent) // 4)
    return {
        "id": f"chatcmpl-fake-{next(_completion_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


_UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to"
    " each 'tool_call_id'. The following tool_call_ids did not have response messages: {ids}"
)
# OpenAI's own wording, misspelling included.
_STRAY_RESULT = (
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message"
    " with 'tool_calls'."
)


def tool_pairing_error(messages: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """What OpenAI answers to ``messages`` that break the tool-call pairing rule, and the
    ``param`` it names; None if they keep it.

    The rule: every call of an assistant message's ``tool_calls`` is answered by a tool
    message with its ``tool_call_id`` before the next message of another role (or the end),
    and every tool message answers a call of the assistant message it follows.
    """
    calls: set[str] = set()
    unanswered: list[str] = []
    for index, message in enumerate(messages):
        if message.get("role") == "tool":
            answered = message.get("tool_call_id")
            if answered not in calls:
                return _STRAY_RESULT, f"messages.[{index}].role"
            unanswered = [call for call in unanswered if call != answered]
            continue
        if unanswered:
            break
        made = (message.get("tool_calls") or []) if message.get("role") == "assistant" else []
        unanswered = [str(call.get("id")) for call in made]
        calls = set(unanswered)
    if unanswered:
        return _UNANSWERED.format(ids=", ".join(unanswered)), "messages"
    return None


def _embedding(text: str, dim: int) -> list[float]:
    # The same text always gets the same vector: enough for an archive to store and find.
    blocks = -(-dim // 32)
    digest = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(blocks))
    return [byte / 127.5 - 1.0 for byte in digest[:dim]]


def _texts(body: dict[str, Any]) -> list[str]:
    texts = body.get("input", [])
    return [texts] if isinstance(texts, str) else [str(text) for text in texts]


def _estimated_prompt_tokens(body: dict[str, Any]) -> int:
    # About four characters a token: grows with the conversation, as a real count does.
    return max(1, len(json.dumps([body.get("messages"), body.get("tools")])) // 4)


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
) -> web.Response:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return web.json_response(body, status=status, headers=headers)


class FakeOpenAI:
    """An OpenAI-compatible chat server; use as ``async with FakeOpenAI() as fake``."""

    def __init__(
        self,
        *,
        models: Sequence[str] = ("fake-model",),
        strict_tool_pairing: bool = True,
        embedding_dim: int = 16,
    ) -> None:
        self.base_url = ""
        self.requests: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self.strict_tool_pairing = strict_tool_pairing
        self._embedding_dim = embedding_dim
        self._held_embeddings: list[tuple[str, asyncio.Event]] = []
        self._models = list(models)
        self.models_status = 200
        """Set to an error status to make ``GET /v1/models`` (a health probe) fail."""
        self._queue: deque[_Scripted] = deque()
        self._responder: Responder | None = None
        self._hanging: list[asyncio.Event] = []
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        # A handler still running at shutdown is a test bug; do not wait a minute for it.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)

    @property
    def pending(self) -> int:
        """Scripted responses not yet consumed."""
        return len(self._queue)

    async def __aenter__(self) -> FakeOpenAI:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for event in self._hanging:
            event.set()
        await self._runner.cleanup()

    def reply(
        self,
        content: str | None = None,
        *,
        tool_calls: Sequence[ScriptedToolCall] = (),
        prompt_tokens: int | None = None,
    ) -> None:
        """Queue one completion: text, tool calls, or both.

        The model name is echoed from the request; ``prompt_tokens`` defaults to
        an estimate from the request's size.
        """

        self._queue.append(self._scripted(content, tool_calls, prompt_tokens))

    def reply_held(
        self,
        content: str | None = None,
        *,
        tool_calls: Sequence[ScriptedToolCall] = (),
        after: int,
    ) -> asyncio.Event:
        """Queue a completion that, streamed, stops after ``after`` characters of its text and
        arguments until the returned event is set (not streamed: answers only then)."""
        release = asyncio.Event()
        self._hanging.append(release)
        self._queue.append(self._scripted(content, tool_calls, None, (after, release)))
        return release

    def reply_cut(self, content: str, *, after: int) -> None:
        """Queue a completion whose stream breaks off after ``after`` characters of ``content``
        (the connection closes without ``[DONE]``)."""
        self._queue.append(self._scripted(content, (), None, cut=after))

    def _scripted(
        self,
        content: str | None,
        tool_calls: Sequence[ScriptedToolCall],
        prompt_tokens: int | None,
        hold: tuple[int, asyncio.Event] | None = None,
        cut: int | None = None,
    ) -> _Scripted:
        async def respond(body: dict[str, Any]) -> web.Response:
            tokens = _estimated_prompt_tokens(body) if prompt_tokens is None else prompt_tokens
            completion = chat_completion(
                content,
                tool_calls=tool_calls,
                model=str(body.get("model", "fake-model")),
                prompt_tokens=tokens,
            )
            if hold is not None and not body.get("stream"):
                await hold[1].wait()
            return self._completion_response(completion, body, hold, cut)

        return respond

    def fail(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Queue ``times`` HTTP errors with an OpenAI-style error body.

        ``retry_after`` becomes a ``Retry-After`` header in seconds (fractions
        allowed: the openai client accepts them and they keep tests fast).
        """
        headers = None if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        text = message or f"fake server: scripted HTTP {status}"

        async def respond(body: dict[str, Any]) -> web.Response:
            return _error(status, text, headers)

        self._queue.extend(itertools.repeat(respond, times))

    def hang(self, content: str = "released") -> asyncio.Event:
        """Queue a response that waits for the returned event, then replies ``content``.

        Every hanging request is released when the server shuts down.
        """
        release = asyncio.Event()
        self._hanging.append(release)

        async def respond(body: dict[str, Any]) -> web.Response:
            await release.wait()
            return self._completion_response(
                chat_completion(content, model=str(body.get("model", "fake-model"))), body
            )

        self._queue.append(respond)
        return release

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Return once ``count`` chat requests have arrived in total."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.requests) >= count), timeout
            )

    def hang_embeddings(self, containing: str) -> asyncio.Event:
        """Hold every embedding request with a text containing ``containing`` until the
        returned event is set; the server's shutdown releases them too."""
        release = asyncio.Event()
        self._hanging.append(release)
        self._held_embeddings.append((containing, release))
        return release

    async def wait_for_embedding(self, containing: str, timeout: float = 10.0) -> None:
        """Return once an embedding request with a text containing ``containing`` has arrived."""

        def arrived() -> bool:
            return any(
                containing in text for body in self.embedding_requests for text in _texts(body)
            )

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(arrived), timeout)

    def recorded(self, status: int, body: dict[str, Any]) -> None:
        """Queue an answer exactly as a real server once gave it: ``status`` and JSON ``body``
        (the bodies in tests/fixtures/llm_responses/)."""

        async def respond(request_body: dict[str, Any]) -> web.Response:
            if status == 200:
                # A streaming request gets the same answer as its server would stream it.
                return self._completion_response(body, request_body)
            return web.json_response(body, status=status)

        self._queue.append(respond)

    def malformed(self, body: str) -> None:
        """Queue a 200 ``application/json`` response whose body is ``body``, verbatim."""

        async def respond(request_body: dict[str, Any]) -> web.Response:
            return web.Response(text=body, content_type="application/json")

        self._queue.append(respond)

    def respond_with(self, handler: Responder) -> None:
        """Answer with ``handler(request body)`` (a completion body) whenever the queue is empty.

        :func:`chat_completion` builds such bodies.
        """
        self._responder = handler

    def _completion_response(
        self,
        completion: dict[str, Any],
        request_body: dict[str, Any],
        hold: tuple[int, asyncio.Event] | None = None,
        cut: int | None = None,
    ) -> web.Response:
        self.responses.append(completion)
        if not request_body.get("stream"):
            return web.json_response(completion)
        usage = bool((request_body.get("stream_options") or {}).get("include_usage"))
        return web.Response(
            body=_server_sent_events(completion, usage, hold, cut),
            content_type="text/event-stream",
        )

    async def _chat_completions(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "fake server: the request body is not JSON")
        self.requests.append(body)
        async with self._arrived:
            self._arrived.notify_all()
        broken = tool_pairing_error(body.get("messages", []))
        if self.strict_tool_pairing and broken is not None:
            message, param = broken
            return _error(400, message, param=param)
        if self._queue:
            return await self._queue.popleft()(body)
        if self._responder is not None:
            answer = self._responder(body)
            completion = await answer if inspect.isawaitable(answer) else answer
            return self._completion_response(completion, body)
        return _error(500, "fake server: nothing scripted for this request")

    async def _embeddings(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "fake server: the request body is not JSON")
        self.embedding_requests.append(body)
        async with self._arrived:
            self._arrived.notify_all()
        texts = _texts(body)
        for containing, release in self._held_embeddings:
            if any(containing in text for text in texts):
                await release.wait()
        data = [
            {"object": "embedding", "index": i, "embedding": _embedding(text, self._embedding_dim)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(text.split()) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response(
            {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        )

    async def _list_models(self, request: web.Request) -> web.Response:
        if self.models_status != 200:
            return _error(self.models_status, "fake server: models unavailable")
        created = int(time.time())
        data = [
            {"id": model, "object": "model", "created": created, "owned_by": "fake"}
            for model in self._models
        ]
        return web.json_response({"object": "list", "data": data})


_PIECE = 6  # characters per streamed delta: several per word, like a real server's tokens


async def _server_sent_events(
    completion: dict[str, Any],
    usage: bool,
    hold: tuple[int, asyncio.Event] | None,
    cut: int | None,
) -> AsyncIterator[bytes]:
    """``completion`` as OpenAI streams it: chunks of a few characters, then ``[DONE]``.

    With ``hold = (n, event)`` the stream waits for ``event`` once ``n`` characters of text
    and arguments have gone out; with ``cut = n`` it breaks off there instead.
    """
    choice = completion["choices"][0]
    message = choice["message"]
    head = {k: completion[k] for k in ("id", "created", "model")}
    sent = 0

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {**head, "object": "chat.completion.chunk"}
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return f"data: {json.dumps(body)}\n\n".encode()

    async def pieces(text: str) -> AsyncIterator[str]:
        nonlocal sent
        for at in range(0, len(text), _PIECE):
            if hold is not None and sent >= hold[0]:
                await hold[1].wait()
            if cut is not None and sent >= cut:
                # aiohttp drops the connection when a body's generator fails.
                raise ConnectionResetError("fake server: stream cut off")
            piece = text[at : at + _PIECE]
            sent += len(piece)
            yield piece

    yield chunk({"role": "assistant", "content": ""})
    async for piece in pieces(message.get("content") or ""):
        yield chunk({"content": piece})
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        first = {"index": index, "id": call["id"], "type": "function"}
        yield chunk({"tool_calls": [{**first, "function": {"name": function["name"]}}]})
        async for piece in pieces(function["arguments"]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, choice.get("finish_reason"))
    if usage and completion.get("usage"):
        body = {**head, "object": "chat.completion.chunk", "choices": []}
        yield f"data: {json.dumps({**body, 'usage': completion['usage']})}\n\n".encode()
    yield b"data: [DONE]\n\n"


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI` for one test."""
    async with FakeOpenAI() as fake:
        yield fake

"""What a chat server answered, read into a :class:`Completion`: a whole body or a stream.

A whole body is parsed from its raw JSON (the SDK builds its objects unvalidated, so a
malformed answer would only fail later, somewhere else); :class:`MalformedReply` says what
is wrong with one that is not a chat completion.

Streaming changes when the words arrive, not what the turn is: every delta goes to the
caller's sink as it comes (so a person can watch a slow local model write), and the chunks
add up to the completion a non-streamed request would have returned. Chunks are read as
plain data, defensively: servers differ in what they put in them (usage in a last chunk of
its own or in the one with ``finish_reason``; ids and names only in a call's first delta).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Completion",
    "DeltaSink",
    "MalformedReply",
    "StreamDelta",
    "StreamedCompletion",
    "ToolCall",
    "parse_completion",
]


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for."""

    id: str
    name: str
    arguments: str
    """The JSON text exactly as the model sent it; it may not parse."""


@dataclass(frozen=True)
class Completion:
    """One assistant turn: its text (a MemGPT agent's inner monologue) and its tool calls."""

    content: str | None
    tool_calls: list[ToolCall]
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None = None
    """``"stop"``, ``"tool_calls"``, ``"length"`` (cut off at ``max_tokens``), or None."""


class MalformedReply(Exception):
    """A 200 answer that is not a usable chat completion; the message says what is wrong."""


@dataclass(frozen=True)
class StreamDelta:
    """What one chunk added: message text, or a piece of tool call number ``call``."""

    content: str = ""
    call: int | None = None
    name: str | None = None
    """The function's name, in the call's first delta."""
    arguments: str = ""


DeltaSink = Callable[[StreamDelta], None]


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class StreamedCompletion:
    """The parts of a completion gathered from its chunks."""

    content: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None

    async def read(self, chunks: AsyncIterable[Any], sink: DeltaSink) -> None:
        """Gather every chunk of ``chunks``, passing each delta to ``sink`` as it arrives."""
        async for chunk in chunks:
            data: Any = chunk.model_dump() if hasattr(chunk, "model_dump") else chunk
            if not isinstance(data, dict):
                continue
            self._usage(data.get("usage"))
            for choice in data.get("choices") or ():
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, sink)

    def _choice(self, choice: dict[str, Any], sink: DeltaSink) -> None:
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self.finish_reason = finish
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return
        text = delta.get("content")
        if isinstance(text, str) and text:
            self.content.append(text)
            sink(StreamDelta(content=text))
        for piece in delta.get("tool_calls") or ():
            if isinstance(piece, dict):
                self._call_piece(piece, sink)

    def _call_piece(self, piece: dict[str, Any], sink: DeltaSink) -> None:
        index = piece.get("index")
        number = index if isinstance(index, int) else len(self.calls)
        call = self.calls.setdefault(number, _Call())
        if isinstance(piece.get("id"), str) and piece["id"]:
            call.id = piece["id"]
        function = piece.get("function")
        if not isinstance(function, dict):
            return
        name = function.get("name")
        if isinstance(name, str) and name:
            call.name += name
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else ""
        call.arguments.append(arguments)
        sink(StreamDelta(call=number, name=name or None, arguments=arguments))

    def _usage(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        self.prompt_tokens = token_count(usage.get("prompt_tokens")) or self.prompt_tokens
        self.completion_tokens = (
            token_count(usage.get("completion_tokens")) or self.completion_tokens
        )

    def completion(self) -> Completion:
        """What the chunks add up to; raises :class:`MalformedReply` for a call without a name."""
        calls: list[ToolCall] = []
        for _, call in sorted(self.calls.items()):
            if not call.name:
                raise MalformedReply("a streamed tool call has no name")
            # Some servers stream no call ids; results are paired with calls by id.
            call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
            calls.append(ToolCall(call_id, call.name, "".join(call.arguments)))
        return Completion(
            content="".join(self.content) or None,
            tool_calls=calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish_reason,
        )


def parse_completion(body: object) -> Completion:
    """The first choice of a chat completion body; raises :class:`MalformedReply`."""
    if not isinstance(body, dict):
        raise MalformedReply("not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("no choices")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        raise MalformedReply("no message")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedReply("the content is not text")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise MalformedReply("tool_calls is not a list")
    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    finish = choices[0].get("finish_reason")
    return Completion(
        content=content,
        tool_calls=[_tool_call(call) for call in calls],
        prompt_tokens=token_count(usage.get("prompt_tokens")),
        completion_tokens=token_count(usage.get("completion_tokens")),
        finish_reason=finish if isinstance(finish, str) else None,
    )


def _tool_call(call: object) -> ToolCall:
    if not isinstance(call, dict):
        raise MalformedReply("a tool call is not an object")
    function = call.get("function")
    if not isinstance(function, dict):
        raise MalformedReply("a tool call has no function")
    call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise MalformedReply("a tool call has no id or no name")
    if not isinstance(arguments, str):
        raise MalformedReply("a tool call's arguments are not text")
    return ToolCall(id=call_id, name=name, arguments=arguments)


def token_count(value: object) -> int | None:
    # Token counts are optional for OpenAI-compatible servers; a bool is not a count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None

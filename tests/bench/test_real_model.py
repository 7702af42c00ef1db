"""The real-model bench's recording proxy reads a streamed answer as the body it stands for."""

from __future__ import annotations

import json

from bench.real_model import assembled


def _events(*chunks: object) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def test_a_streamed_answer_is_recorded_as_one_body() -> None:
    call = {"index": 0, "id": "c1", "function": {"name": "send_", "arguments": '{"mess'}}
    rest = {"index": 0, "function": {"name": "message", "arguments": 'age": "Hi."}'}}
    body = assembled(
        _events(
            {"choices": [{"delta": {"content": "Thinking"}}]},
            {"choices": [{"delta": {"content": " aloud.", "tool_calls": [call]}}]},
            {"choices": [{"delta": {"tool_calls": [rest]}, "finish_reason": "tool_calls"}]},
            {"choices": [], "usage": {"prompt_tokens": 12}, "timings": {"cache_n": 8}},
        )
    )
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Thinking aloud."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "send_message", "arguments": '{"message": "Hi."}'},
        }
    ]
    assert body["usage"] == {"prompt_tokens": 12} and body["timings"] == {"cache_n": 8}

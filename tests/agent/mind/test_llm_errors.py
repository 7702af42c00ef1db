"""A request too long for the server's window is recognised in every server's wording."""

from __future__ import annotations

import json

import pytest

from agent.mind.llm import OpenAILLM
from agent.mind.llm_errors import CONTEXT_OVERFLOW, ContextOverflow, overflow_in
from tests.fake_openai import FakeOpenAI

LLAMA_CPP = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 4466,
        "n_ctx": 4096,
    }
}
OPENAI = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages"
        " resulted in 9120 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
VLLM = {
    "object": "error",
    "message": "This model's maximum context length is 2048 tokens. However, you requested 2311"
    " tokens (1287 in the messages, 1024 in the completion). Please reduce the length of the"
    " messages or completion.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}


@pytest.mark.parametrize(
    ("status", "body", "window"),
    [(400, LLAMA_CPP, 4096), (500, LLAMA_CPP, 4096), (400, OPENAI, 8192), (400, VLLM, 2048)],
    ids=["llama.cpp", "llama.cpp-500", "openai", "vllm"],
)
def test_each_servers_wording_is_an_overflow_with_its_window(
    status: int, body: dict[str, object], window: int
) -> None:
    found = overflow_in(status, json.dumps(body))
    assert found is not None and found.window == window and str(found) == CONTEXT_OVERFLOW


def test_other_failures_are_not_overflows() -> None:
    assert overflow_in(400, '{"error": {"message": "The model `gpt-9` does not exist"}}') is None
    assert overflow_in(200, json.dumps(LLAMA_CPP)) is None


async def test_the_client_raises_an_overflow_and_never_blames_the_model_name(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.fail(400, message=str(VLLM["message"]))
    llm = OpenAILLM(
        model="fake-model", base_url=fake_openai.base_url, api_key=None, timeout=5, max_retries=0
    )
    try:
        with pytest.raises(ContextOverflow) as caught:
            await llm.complete([{"role": "user", "content": "hi"}], [])
    finally:
        await llm.aclose()
    assert caught.value.kind == "context_overflow" and caught.value.window == 2048
    assert "model name" not in str(caught.value)

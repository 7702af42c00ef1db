"""How a model endpoint's failures reach people: one sentence per kind, the detail in the log.

A request too long for the server's context window is its own kind
(:class:`ContextOverflow`): the agent answers it by summarising, not by blaming the model
name. Servers word it differently; every wording seen is recognised here.

The sentences reach channel members, so they name no address: the endpoint's URL and the
cause underneath go to the operator's log line, written where the failure is caught
(:meth:`agent.mind.llm.OpenAILLM._unavailable`).
"""

from __future__ import annotations

import json
import re
from typing import Final, Literal

from agent.errors import ArchivistError

LLMErrorKind = Literal[
    "timeout",
    "rate_limited",
    "server_error",
    "connection",
    "auth",
    "bad_request",
    "context_overflow",
]

# OpenAI's error code, llama.cpp's error type, and the sentences of vLLM, llama.cpp's older
# servers, LM Studio and TGI.
_OVERFLOW_MARKERS: Final = (
    "context_length_exceeded",
    "exceed_context_size_error",
    "maximum context length",
    "exceeds the available context size",
    "context window",
    "context length",
    "too many tokens",
    "input is too long",
)
_N_CTX_IN_TEXT: Final = re.compile(
    r"maximum context length is (\d+)|available context size \((\d+) tokens\)"
)

UNREACHABLE: Final = "The language model is unreachable: try again later."

CONTEXT_OVERFLOW: Final = (
    "This conversation no longer fits the language model's context window, even after"
    " summarising it: start afresh with /reset (sources stay attached)."
)


class LLMUnavailable(ArchivistError):
    """The language model failed to answer; the message says what to do.

    ``kind`` says how: ``"timeout"``, ``"rate_limited"``, ``"server_error"`` (5xx, or an
    answer that is not a chat completion), ``"connection"``, ``"auth"`` (401/403),
    ``"context_overflow"`` (the request is longer than the server's window) or
    ``"bad_request"`` (any other 4xx).
    """

    def __init__(self, message: str, *, kind: LLMErrorKind) -> None:
        super().__init__(message)
        self.kind: LLMErrorKind = kind


class ContextOverflow(LLMUnavailable):
    """The server refused the request as longer than its context window.

    ``window`` is the server's window in tokens when its answer says so.
    """

    def __init__(self, window: int | None) -> None:
        super().__init__(CONTEXT_OVERFLOW, kind="context_overflow")
        self.window = window


def overflow_in(status: int, body: str) -> ContextOverflow | None:
    """The overflow a 4xx/5xx answer reports, if it is one (llama.cpp answers 400 or 500)."""
    if status < 400:
        return None
    lowered = body.lower()
    if not any(marker in lowered for marker in _OVERFLOW_MARKERS):
        return None
    return ContextOverflow(_window_in(body))


def _window_in(body: str) -> int | None:
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    n_ctx = error.get("n_ctx") if isinstance(error, dict) else None
    if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx > 0:
        return n_ctx
    found = _N_CTX_IN_TEXT.search(body)
    return int(found.group(1) or found.group(2)) if found else None


def status_failure(status: int, model: str) -> tuple[LLMErrorKind, str]:
    """The kind and the user's sentence for an HTTP failure that is not an overflow."""
    # By status rather than by SDK class: the SDK picks its classes by these same codes,
    # and a 5xx other than 500 has no class of its own.
    if status in (401, 403):
        return "auth", (
            f"The language model refused the bot's credentials (HTTP {status}): check the API key."
        )
    if status == 429:
        return "rate_limited", "The language model is rate-limiting the bot: try again in a minute."
    if status >= 500:
        return (
            "server_error",
            f"The language model failed with HTTP {status}: try again in a moment.",
        )
    return "bad_request", (
        f"The language model rejected the request with HTTP {status}:"
        f" check that the model name {model!r} is right, and the bot's log."
    )

"""The language-model seam: chat messages and tool schemas in, one :class:`Completion` out.

The agent loop talks to an :class:`LLM` and never to a backend directly.
:func:`build_llm` makes one from explicit arguments (the core reads no config and
no environment), or none when no endpoint is configured: the bot then runs in
search-only mode.

Messages and tools are passed through in the OpenAI chat format. Tool-call
arguments come back as the raw text the model wrote, valid JSON or not: telling
the model that its arguments did not parse is the agent loop's job, not a failure
of the endpoint. Failures of the endpoint itself, after the client's retries,
become :class:`LLMUnavailable` with a sentence for the user that names no address;
the endpoint's URL and the cause go to the log, never the API key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from agent.errors import shown_url
from agent.mind.llm_errors import (
    UNREACHABLE,
    ContextOverflow,
    LLMErrorKind,
    LLMUnavailable,
    overflow_in,
    status_failure,
)
from agent.mind.llm_replies import (
    Completion,
    DeltaSink,
    MalformedReply,
    StreamDelta,
    StreamedCompletion,
    ToolCall,
    parse_completion,
)
from agent.mind.llm_server import probe_context_window

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolUnionParam

__all__ = [
    "LLM",
    "Completion",
    "ContextOverflow",
    "DeltaSink",
    "LLMErrorKind",
    "LLMUnavailable",
    "OpenAILLM",
    "Sampling",
    "StreamDelta",
    "ToolCall",
    "build_llm",
]

logger = logging.getLogger(__name__)

# Same as agent.documents.remote_embed's and embed's, repeated so that this module does not
# import the embedding stack. AsyncOpenAI refuses a missing key (and would read
# OPENAI_API_KEY and OPENAI_BASE_URL from the environment); keyless local
# servers accept any bearer token.
_NO_API_KEY: Final = "unused"
_OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
_LOGGED_BODY_CHARS: Final = 200
# A health check must answer well within a probe's own timeout (Kubernetes: 1 s by default
# is too short for a remote endpoint, so probes are usually set to a few seconds).
_PING_TIMEOUT: Final = 5.0


@dataclass(frozen=True)
class Sampling:
    """What every request asks of the model besides the messages."""

    max_tokens: int = 1024
    """Tokens one reply step may generate; a step cut off there is handled, not delivered."""
    temperature: float | None = None
    """None: the server's default."""
    top_p: float | None = None


class LLM(Protocol):
    """What the agent loop needs from a chat model."""

    @property
    def model(self) -> str:
        """Name of the model that answers."""
        ...

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int | None = None,
        on_delta: DeltaSink | None = None,
    ) -> Completion:
        """The model's next turn after ``messages``, free to call any of ``tools``.

        Both are in the OpenAI chat format; ``max_tokens`` overrides the configured bound
        for this request. With ``on_delta`` the answer is streamed and each piece passed to
        it as it arrives; the completion returned is the same. Raises :class:`LLMUnavailable`
        when the endpoint fails, after retries, and :class:`ContextOverflow` when the request
        is longer than its window.
        """
        ...

    async def context_window(self) -> int | None:
        """The server's context window in tokens, if it says (llama.cpp, vLLM); else None."""
        ...

    async def ping(self) -> None:
        """Prove the endpoint answers and accepts the key; raises :class:`LLMUnavailable`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class OpenAILLM:
    """Any OpenAI-compatible ``/v1/chat/completions`` endpoint, through ``openai.AsyncOpenAI``.

    Retries are the client's own: up to ``max_retries`` more attempts after
    timeouts, connection errors and HTTP 408, 409, 429 and 5xx (an
    ``x-should-retry`` header overrides the status). Before each it waits what
    the answer's ``retry-after-ms`` or ``Retry-After`` header asks (seconds,
    fractions allowed, or an HTTP date) if that is more than 0 and at most 120 s;
    an answer asking for longer than 120 s is not retried at all and fails at
    once. Without a usable header it backs off 0.5 s x 2^n, at most 8 s, minus up
    to 25 % jitter. ``timeout`` (seconds) applies to each attempt, so a call can
    take up to ``(max_retries + 1) * timeout`` plus those waits.

    One instance serves concurrent calls from every channel.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        connect_timeout: float = 10.0,
        sampling: Sampling | None = None,
    ) -> None:
        # Imported here: ~0.5 s that a search-only bot should not pay.
        import openai

        self._model = model
        self._base_url = base_url or _OPENAI_BASE_URL
        self._shown_url = shown_url(self._base_url)
        self._api_key = api_key
        self._timeout = timeout
        self._sampling = sampling or Sampling()
        self._client: openai.AsyncOpenAI = openai.AsyncOpenAI(
            base_url=self._base_url,
            api_key=api_key or _NO_API_KEY,
            # A dead server is known in seconds; a CPU model may think for minutes.
            timeout=openai.Timeout(timeout, connect=min(connect_timeout, timeout)),
            max_retries=max_retries,
        )

    @property
    def model(self) -> str:
        """Name of the model that answers."""
        return self._model

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int | None = None,
        on_delta: DeltaSink | None = None,
    ) -> Completion:
        """The model's next turn; see :meth:`LLM.complete`."""
        import openai

        sampling = self._sampling
        request: dict[str, Any] = {
            "model": self._model,
            "messages": cast("list[ChatCompletionMessageParam]", list(messages)),
            "tools": cast("list[ChatCompletionToolUnionParam]", list(tools)) or openai.omit,
            "tool_choice": "auto" if tools else openai.omit,
            "max_tokens": max_tokens or sampling.max_tokens,
            "temperature": openai.omit if sampling.temperature is None else sampling.temperature,
            "top_p": openai.omit if sampling.top_p is None else sampling.top_p,
        }
        if on_delta is not None:
            return await self._streamed(request, on_delta)
        try:
            # The raw body, not the SDK's model: see agent.mind.llm_replies.
            raw = await self._client.chat.completions.with_raw_response.create(**request)
        except openai.APIError as exc:
            raise self._unavailable(exc) from exc
        body = raw.text
        try:
            return parse_completion(json.loads(body))
        except (ValueError, MalformedReply) as exc:
            reason = str(exc) if isinstance(exc, MalformedReply) else "not JSON"
            shown = f"status={raw.status_code} body={body[:_LOGGED_BODY_CHARS]!r}"
            raise self._unusable(reason, shown) from exc

    async def _streamed(self, request: dict[str, Any], sink: DeltaSink) -> Completion:
        import openai

        gathered = StreamedCompletion()
        try:
            stream = await self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            await gathered.read(stream, sink)
            return gathered.completion()
        except openai.APIError as exc:
            # A stream cut off midway is one too: the SDK raises a connection error for it.
            raise self._unavailable(exc) from exc
        except MalformedReply as exc:
            raise self._unusable(str(exc), "streamed") from exc

    def _unusable(self, reason: str, detail: str) -> LLMUnavailable:
        logger.warning(
            "LLM reply unusable (%s): model=%s base_url=%s %s",
            reason,
            self._model,
            self._shown_url,
            self._redacted(detail),
        )
        return LLMUnavailable(
            f"The language model sent an answer that is not a chat completion ({reason}):"
            " check that the endpoint is OpenAI-compatible.",
            kind="server_error",
        )

    async def ping(self) -> None:
        """One ``GET /models`` without retries; see :meth:`LLM.ping`.

        A 404 still proves the server is there: some compatible servers have no model list.
        """
        import openai

        try:
            await self._client.with_options(max_retries=0, timeout=_PING_TIMEOUT).models.list()
        except openai.NotFoundError:
            return
        except openai.APIError as exc:
            raise self._unavailable(exc) from exc

    async def context_window(self) -> int | None:
        """See :meth:`LLM.context_window`; a server that does not say is not an error."""
        return await probe_context_window(self._base_url, self._api_key)

    async def aclose(self) -> None:
        """Release connections."""
        await self._client.close()

    def _unavailable(self, exc: openai.APIError) -> LLMUnavailable:
        import openai

        status: int | None = None
        if isinstance(exc, openai.APITimeoutError):
            kind: LLMErrorKind = "timeout"
            message = (
                f"The language model did not answer within {self._timeout:g} s:"
                " try again in a moment."
            )
        elif isinstance(exc, openai.APIConnectionError):
            kind = "connection"
            message = UNREACHABLE
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            overflow = overflow_in(status, exc.response.text)
            if overflow is not None:
                logger.info(
                    "LLM context window exceeded: model=%s window=%s", self._model, overflow.window
                )
                return overflow
            kind, message = status_failure(status, self._model)
        else:
            # APIResponseValidationError: only raised in strict mode, which is off.
            kind = "server_error"
            message = "The language model sent an unusable answer."
        # The cause names what failed underneath (a refused connection, a read timeout).
        detail = f"{exc} ({exc.__cause__!r})" if exc.__cause__ is not None else str(exc)
        logger.warning(
            "LLM request failed (%s): model=%s base_url=%s status=%s: %r",
            kind,
            self._model,
            self._shown_url,
            status,
            self._redacted(detail),
        )
        return LLMUnavailable(message, kind=kind)

    def _redacted(self, text: str) -> str:
        # Some servers echo the key in their error messages.
        return text.replace(self._api_key, "***") if self._api_key else text


def build_llm(
    *,
    base_url: str | None,
    model: str,
    api_key: str | None,
    timeout: float,
    max_retries: int,
    connect_timeout: float = 10.0,
    sampling: Sampling | None = None,
) -> LLM | None:
    """The chat model the configuration names, or None when no endpoint is configured.

    With neither ``base_url`` nor ``api_key`` there is no model: the bot runs in
    search-only mode. A key without a URL means OpenAI's API; a URL without a
    key means a keyless local server. ``timeout`` is in seconds, per attempt (waiting for
    the answer); ``connect_timeout`` bounds connecting.
    Cheap: the endpoint is first contacted on the first ``complete()``.
    """
    if not base_url and not api_key:
        return None
    return OpenAILLM(
        model=model,
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_retries=max_retries,
        connect_timeout=connect_timeout,
        sampling=sampling,
    )

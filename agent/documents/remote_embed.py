"""The ``"openai"`` backend of :mod:`agent.documents.embed`: :class:`OpenAIEmbedder`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from agent.documents.embed import Vectors, WordPiece, check_at_least, normalised, run_bounded
from agent.errors import EmbedderUnavailable, shown_url

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIEmbedder"]

log = logging.getLogger(__name__)

# AsyncOpenAI refuses a missing key (and would read OPENAI_API_KEY from the
# environment); keyless local servers accept any bearer token.
_NO_API_KEY: Final = "unused"


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint.

    The ``openai`` client retries 408/409/429/5xx and connection errors with
    backoff, honouring ``Retry-After``; what still fails becomes
    :class:`EmbedderUnavailable` (the endpoint goes to the log, never the key). ``dim`` is
    learned from the first answer unless given. Token counts are estimated
    with the local WordPiece tokenizer. Requests carry ``batch_size`` texts,
    at most ``max_concurrency`` in flight.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None,
        batch_size: int = 64,
        max_concurrency: int = 2,
        max_retries: int = 4,
        timeout: float = 60.0,
        dim: int | None = None,
        max_text_tokens: int = 512,
    ) -> None:
        check_at_least(
            1,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            max_text_tokens=max_text_tokens,
        )
        # Imported here: ~0.5 s that the local backend should not pay.
        import openai

        self._model = model
        self._base_url = base_url
        self._batch_size = batch_size
        self._max_concurrency = max_concurrency
        self._dim = dim
        self._max_text_tokens = max_text_tokens
        self._wordpiece = WordPiece()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client: openai.AsyncOpenAI = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _NO_API_KEY,
            max_retries=max_retries,
            timeout=timeout,
        )

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise RuntimeError(
                "dim comes from the endpoint's first answer: configure it or await embed() first"
            )
        return self._dim

    @property
    def max_text_tokens(self) -> int:
        return self._max_text_tokens

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._wordpiece.spans(text)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.empty((0, self._dim or 0), dtype=np.float32)
        starts = range(0, len(texts), self._batch_size)
        parts: dict[int, Vectors] = {}

        def job(start: int) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                async with self._slots:
                    parts[start] = await self._request(texts[start : start + self._batch_size])

            return run

        await run_bounded(self._max_concurrency, [job(start) for start in starts])
        return np.concatenate([parts[start] for start in starts])

    async def aclose(self) -> None:
        await self._client.close()

    def _log_failure(self, exc: Exception) -> None:
        # People are told what failed; the operator's log says where, and why underneath.
        log.warning(
            "embedding request failed: base_url=%s model=%s: %r (%r)",
            shown_url(self._base_url),
            self._model,
            exc,
            exc.__cause__,
        )

    async def _request(self, texts: Sequence[str]) -> Vectors:
        import openai

        try:
            response = await self._client.embeddings.create(
                model=self._model, input=list(texts), encoding_format="float"
            )
        except openai.APIStatusError as exc:
            self._log_failure(exc)
            raise EmbedderUnavailable(
                f"The embedding model answered HTTP {exc.status_code} for {self._model!r},"
                " even after retries: try again in a moment."
            ) from exc
        except openai.APIError as exc:
            self._log_failure(exc)
            raise EmbedderUnavailable(
                "The embedding model could not be reached, even after retries: try again in a"
                " moment."
            ) from exc
        items = sorted(response.data, key=lambda item: item.index)
        vectors = np.asarray([item.embedding for item in items], dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts) or not np.isfinite(vectors).all():
            raise EmbedderUnavailable(
                f"The embedding model answered {len(items)} malformed vectors for {len(texts)}"
                " texts: check that the endpoint is OpenAI-compatible."
            )
        if self._dim is None:
            self._dim = vectors.shape[1]
        elif vectors.shape[1] != self._dim:
            raise EmbedderUnavailable(
                f"The embedding model returned {vectors.shape[1]}-dimensional vectors, but"
                f" {self._dim} are expected."
            )
        return normalised(vectors)

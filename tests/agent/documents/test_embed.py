"""The embedding seam and the local backend, against the real model."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from agent.documents.embed import (
    LOCAL_MODEL_ID,
    LOCAL_MODEL_IDS,
    LOCAL_Q8_MODEL_ID,
    LOCAL_Q8F_MODEL_ID,
    Embedder,
    Vectors,
    build_embedder,
)
from agent.documents.local_embed import (
    LocalEmbedder,
    fold_int8_model,
    quantise_fused_model,
    quantise_model,
)
from agent.documents.onnx_model import fuse_attention, int8_model_file
from agent.errors import EmbedderUnavailable

# Each of these is one word piece, so a text of n of them is n pieces long.
COOKING = ["we", "cut", "the", "onions", "and", "fresh", "bread", "then", "cook", "them", "slowly"]
SPACE = ["the", "telescope", "found", "a", "distant", "star", "near", "bright", "planet", "moon"]


def words(vocabulary: list[str], count: int) -> str:
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(count))


def cosine(a: Vectors, b: Vectors) -> float:
    return float(np.dot(a, b))


# Real prose of different kinds, for comparing two graphs' vectors.
PROSE = [
    "Milvus stores the vectors of every passage.",
    "How do I reset my password?",
    "The volcano erupted and covered the village in ash.",
    "To install a package from a local archive, pass its path to the install command; the"
    " dependencies it names are fetched from the configured repositories first.",
    "Quarterly revenue grew by twelve percent, driven by subscriptions in Europe.",
    "A context manager's __exit__ method receives the exception type, value and traceback.",
    words(COOKING, 200),
    words(SPACE, 60),
    "short",
]


def local(cache_dir: Path | None, *, model: str = LOCAL_MODEL_ID, **options: int) -> LocalEmbedder:
    return LocalEmbedder(int8_model_file(), cache_dir=cache_dir, model=model, **options)


def build_local(model: str, cache_dir: Path) -> Embedder:
    return build_embedder(
        "local",
        model=model,
        cache_dir=cache_dir,
        base_url=None,
        api_key=None,
        batch_size=32,
        max_concurrency=1,
        threads=2,
    )


async def embed_once(embedder: Embedder, texts: list[str]) -> Vectors:
    try:
        return await embedder.embed(texts)
    finally:
        await embedder.aclose()


@pytest.fixture(params=LOCAL_MODEL_IDS)
async def minilm(request: pytest.FixtureRequest, model_cache: Path) -> AsyncIterator[Embedder]:
    """Each local model as the composition root builds it (shared cache)."""
    built = build_local(request.param, model_cache)
    yield built
    await built.aclose()


async def test_vectors_are_384_float32_unit_rows(minilm: Embedder) -> None:
    vectors = await minilm.embed(["A cat sits on the mat.", "", "Quarterly revenue grew."])
    assert minilm.model_id in LOCAL_MODEL_IDS
    assert minilm.dim == 384
    assert minilm.max_text_tokens == 254
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (await minilm.embed([])).shape == (0, 384)


async def test_a_paraphrase_is_closer_than_an_unrelated_sentence(minilm: Embedder) -> None:
    query, paraphrase, unrelated = await minilm.embed(
        [
            "How do I reset my password?",
            "What are the steps to change a forgotten login password?",
            "The volcano erupted and covered the village in ash.",
        ]
    )
    assert cosine(query, paraphrase) > 0.5
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.3


async def test_length_sorting_and_batching_keep_the_input_order(model_cache: Path) -> None:
    # Small batches and two at a time: many batches, finishing out of order.
    many = local(model_cache, batch_size=4, max_concurrency=2, threads=1)
    try:
        texts = [words(COOKING if i % 2 else SPACE, (i * 37) % 90 + 1) for i in range(22)]
        together, reversed_together = await asyncio.gather(
            many.embed(texts), many.embed(texts[::-1])
        )
        one_by_one = np.concatenate([await many.embed([text]) for text in texts])
    finally:
        await many.aclose()
    np.testing.assert_allclose(together, one_by_one, atol=2e-5)
    np.testing.assert_allclose(reversed_together[::-1], one_by_one, atol=2e-5)


async def test_the_folded_fp32_graph_matches_the_int8_graph(model_cache: Path) -> None:
    source = int8_model_file()
    folded = fold_int8_model(source, model_cache)
    assert hashlib.sha256(source.read_bytes()).hexdigest()[:16] in folded.name
    assert folded.parent == model_cache
    written = folded.stat().st_mtime_ns
    assert fold_int8_model(source, model_cache) == folded
    assert folded.stat().st_mtime_ns == written, "a cached fold must not be redone"

    texts = [
        "Milvus stores the vectors of every passage.",
        words(COOKING, 200),
        "short",
        words(SPACE, 60),
    ]
    as_shipped, as_folded = local(None), local(model_cache)
    try:
        int8_vectors = await as_shipped.embed(texts)
        fp32_vectors = await as_folded.embed(texts)
    finally:
        await as_shipped.aclose()
        await as_folded.aclose()
    assert np.min(np.sum(int8_vectors * fp32_vectors, axis=1)) >= 0.999


async def test_an_unusable_cache_falls_back_to_the_int8_graph(
    tmp_path: Path, model_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    fallback, folded = local(not_a_folder), local(model_cache)
    try:
        with caplog.at_level(logging.WARNING, logger="agent.documents.local_embed"):
            vectors = await fallback.embed(["The fold failed, the embedding did not."])
        reference = await folded.embed(["The fold failed, the embedding did not."])
    finally:
        await fallback.aclose()
        await folded.aclose()
    assert "running the int8 graph" in caplog.text
    assert cosine(vectors[0], reference[0]) >= 0.999


async def test_the_quantised_graph_is_cached_once_and_agrees_with_the_fp32_model(
    model_cache: Path,
) -> None:
    source = int8_model_file()
    quantised = quantise_model(source, model_cache)
    assert quantised.name.startswith(f"{LOCAL_Q8_MODEL_ID}-")
    assert hashlib.sha256(source.read_bytes()).hexdigest()[:16] in quantised.name
    written = quantised.stat().st_mtime_ns
    assert quantise_model(source, model_cache) == quantised
    assert quantised.stat().st_mtime_ns == written, "a cached quantisation must not be redone"
    # Each kind clears only its own stale versions.
    assert fold_int8_model(source, model_cache).is_file()
    assert quantised.is_file()

    fp32_vectors = await embed_once(build_local(LOCAL_MODEL_ID, model_cache), PROSE)
    q8 = build_local(LOCAL_Q8_MODEL_ID, model_cache)
    assert q8.model_id == LOCAL_Q8_MODEL_ID
    q8_vectors = await embed_once(q8, PROSE)
    cosines = np.sum(fp32_vectors * q8_vectors, axis=1)
    # Measured on 200 passages of prose: mean 0.994, lowest 0.989.
    assert np.mean(cosines) >= 0.985
    assert np.min(cosines) >= 0.97
    assert np.max(cosines) < 0.99999, "the quantised model must not be the fp32 one"


async def test_the_fused_graph_is_cached_once_and_agrees_with_the_fp32_model(
    model_cache: Path, tmp_path: Path
) -> None:
    source = int8_model_file()
    # The fusion alone changes nothing but the graph: fp32 in, the same numbers out.
    fused = tmp_path / "fused.onnx"
    assert fuse_attention(fold_int8_model(source, model_cache), fused) == (6, 6)
    as_fp32 = await embed_once(build_local(LOCAL_MODEL_ID, model_cache), PROSE)
    as_fused = await embed_once(LocalEmbedder(fused, cache_dir=None), PROSE)
    assert np.min(np.sum(as_fp32 * as_fused, axis=1)) >= 0.99999

    quantised = quantise_fused_model(source, model_cache)
    assert quantised.name.startswith(f"{LOCAL_Q8F_MODEL_ID}-")
    assert hashlib.sha256(source.read_bytes()).hexdigest()[:16] in quantised.name
    written = quantised.stat().st_mtime_ns
    assert quantise_fused_model(source, model_cache) == quantised
    assert quantised.stat().st_mtime_ns == written, "a cached quantisation must not be redone"
    # Each kind clears only its own stale versions: q8 is a prefix of q8f.
    assert quantise_model(source, model_cache).is_file()
    assert quantised.is_file()

    q8f = build_local(LOCAL_Q8F_MODEL_ID, model_cache)
    assert q8f.model_id == LOCAL_Q8F_MODEL_ID
    q8f_vectors = await embed_once(q8f, PROSE)
    cosines = np.sum(as_fp32 * q8f_vectors, axis=1)
    # Measured on 200 passages of prose: mean 0.995, lowest 0.991.
    assert np.mean(cosines) >= 0.985
    assert np.min(cosines) >= 0.97
    assert np.max(cosines) < 0.99999, "the quantised model must not be the fp32 one"


def test_a_graph_without_the_exports_attention_is_not_fused(tmp_path: Path) -> None:
    # The shipped int8 graph still has the NaN guards between Softmax and the values.
    with pytest.raises(ValueError):
        fuse_attention(int8_model_file(), tmp_path / "fused.onnx")


@pytest.mark.parametrize("model", [LOCAL_Q8_MODEL_ID, LOCAL_Q8F_MODEL_ID])
async def test_an_unwritable_cache_quantises_for_the_run_alone(
    tmp_path: Path, model_cache: Path, caplog: pytest.LogCaptureFixture, model: str
) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    text = ["The cache failed, the quantised model did not."]
    with caplog.at_level(logging.WARNING, logger="agent.documents.local_embed"):
        uncached = await embed_once(local(not_a_folder, model=model), text)
    cached = await embed_once(local(model_cache, model=model), text)
    assert "building it for this run" in caplog.text
    # The same graph, not the fp32 one in its place.
    assert cosine(uncached[0], cached[0]) >= 0.9999


async def test_a_missing_model_file_is_embedder_unavailable(tmp_path: Path) -> None:
    missing = LocalEmbedder(tmp_path / "absent.onnx", cache_dir=tmp_path)
    try:
        with pytest.raises(EmbedderUnavailable, match="missing"):
            await missing.embed(["anything"])
    finally:
        await missing.aclose()


def test_token_spans_map_back_to_the_text_without_truncation(minilm: Embedder) -> None:
    text = "Archivist's WordPiece splits unbelievably long words, e.g. 'tokenization' (2024)!"
    spans = minilm.token_spans(text)
    assert spans, "no pieces"
    assert all(0 <= start < end <= len(text) for start, end in spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), "overlap"
    # Every non-space character belongs to exactly one piece, in order.
    assert "".join(text[start:end] for start, end in spans) == "".join(text.split())
    assert [text[start:end] for start, end in spans[:4]] == ["Arch", "ivist", "'", "s"]

    thousand_words = words(COOKING + SPACE, 1000)
    assert len(minilm.token_spans(thousand_words)) == 1000 > minilm.max_text_tokens


async def test_the_tokenizer_files_128_piece_limits_are_reset(minilm: Embedder) -> None:
    text = words(COOKING, 100) + " " + words(SPACE, 200)
    spans = minilm.token_spans(text)
    assert len(spans) == 300, "token_spans must not stop at the shipped file's 128"
    first_128 = text[: spans[127][1]]
    first_254 = text[: spans[253][1]]
    full, head_128, head_254 = await minilm.embed([text, first_128, first_254])
    # Were inputs cut at 128 pieces, the cooking-only head would embed like the whole.
    assert cosine(full, head_128) < 0.95
    # The model reads 254 pieces of text; past that, truncation is the safety net.
    assert cosine(full, head_254) > 0.9999


async def test_embedding_never_imports_torch(minilm: Embedder) -> None:
    await minilm.embed(["no PyTorch here"])
    assert "torch" not in sys.modules
    assert "sentence_transformers" not in sys.modules


def test_build_embedder_refuses_what_it_cannot_build(model_cache: Path) -> None:
    def build(backend: str, model: str) -> Embedder:
        return build_embedder(
            backend,
            model=model,
            cache_dir=model_cache,
            base_url=None,
            api_key=None,
            batch_size=32,
            max_concurrency=1,
            threads=2,
        )

    with pytest.raises(EmbedderUnavailable, match="openai backend"):
        build("local", "bge-small-en")
    with pytest.raises(EmbedderUnavailable, match="'local' or 'openai'"):
        build("torch", LOCAL_MODEL_ID)


async def test_each_local_model_has_its_own_id(model_cache: Path) -> None:
    for model, expected in [
        (LOCAL_MODEL_ID, "all-MiniLM-L6-v2"),
        (LOCAL_Q8_MODEL_ID, "all-MiniLM-L6-v2-q8"),
        (LOCAL_Q8F_MODEL_ID, "all-MiniLM-L6-v2-q8f"),
    ]:
        built = build_local(model, model_cache)
        assert built.model_id == expected
        await built.aclose()

"""Passages sized by the real tokenizer, on sentence boundaries, with accurate pages."""

from __future__ import annotations

import itertools
import re

from agent.documents.chunk import Chunk, Chunker
from agent.documents.embed import Embedder

SENTENCES = [
    f"Sentence number {i} explains how the zorblax relay {i} is calibrated in the field."
    for i in range(200)
]


def _chunk_pages(embedder: Embedder, pages: list[str], overlap: int = 32) -> list[Chunk]:
    chunker = Chunker(
        embedder.token_spans, max_tokens=embedder.max_text_tokens, overlap_tokens=overlap
    )
    chunks: list[Chunk] = []
    for number, text in enumerate(pages, start=1):
        chunks.extend(chunker.feed(number, text))
    return chunks + chunker.finish()


def test_no_passage_exceeds_what_the_model_reads(embedder: Embedder) -> None:
    table = " ".join(f"cell{i}|{i * 7}" for i in range(900))  # no sentence end at all
    pages = [" ".join(SENTENCES[:120]), table, " ".join(SENTENCES[120:])]
    chunks = _chunk_pages(embedder, pages)
    for chunk in chunks:
        assert len(embedder.token_spans(chunk.text)) <= embedder.max_text_tokens
        assert chunk.tokens == len(embedder.token_spans(chunk.text))


def test_every_sentence_is_kept_in_order_and_passages_end_on_sentences(embedder: Embedder) -> None:
    chunks = _chunk_pages(embedder, [" ".join(SENTENCES)], overlap=0)
    joined = " ".join(c.text for c in chunks)
    assert joined == " ".join(SENTENCES)
    assert all(c.text.endswith("field.") for c in chunks)
    assert len(chunks) > 5


def test_overlap_repeats_whole_sentences(embedder: Embedder) -> None:
    chunks = _chunk_pages(embedder, [" ".join(SENTENCES)], overlap=40)
    pattern = r"Sentence number \d+ [^.]*\."
    for previous, current in itertools.pairwise(chunks):
        before, after = re.findall(pattern, previous.text), re.findall(pattern, current.text)
        repeated = [s for s in after if s in before]
        assert repeated and repeated == before[-len(repeated) :] == after[: len(repeated)]
        assert len(embedder.token_spans(" ".join(repeated))) <= 40


def test_pages_end_passages_so_citations_stay_accurate(embedder: Embedder) -> None:
    pages = [" ".join(SENTENCES[i * 20 : (i + 1) * 20]) for i in range(5)]
    chunks = _chunk_pages(embedder, pages, overlap=0)
    for chunk in chunks:
        assert chunk.page == chunk.last_page
        first = int(re.search(r"Sentence number (\d+)", chunk.text).group(1))  # type: ignore[union-attr]
        assert chunk.page == first // 20 + 1


def test_every_sentence_of_a_passage_is_on_the_pages_it_cites(embedder: Embedder) -> None:
    # Overlap repeats sentences, but never carries one across a page break.
    pages = [" ".join(SENTENCES[i * 20 : (i + 1) * 20]) for i in range(5)]
    chunks = _chunk_pages(embedder, pages, overlap=40)
    for chunk in chunks:
        numbers = [int(n) for n in re.findall(r"Sentence number (\d+)", chunk.text)]
        assert {n // 20 + 1 for n in numbers} <= set(range(chunk.page, chunk.last_page + 1))


def test_short_page_tails_run_on_instead_of_making_fragments(embedder: Embedder) -> None:
    pages = ["A short closing remark.", " ".join(SENTENCES[:30]), "Tiny."]
    chunks = _chunk_pages(embedder, pages, overlap=0)
    assert chunks[0].page == 1 and chunks[0].last_page == 2
    assert chunks[0].text.startswith("A short closing remark.\n\nSentence number 0")
    assert all(c.tokens >= 8 for c in chunks)


def test_empty_and_punctuation_only_pages_make_no_passages(embedder: Embedder) -> None:
    assert _chunk_pages(embedder, ["", "   \n\n  ", "- - - . ."]) == []

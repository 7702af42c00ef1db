"""Keyword (BM25) and hybrid search: exact terms, quoting, scope, fusion, deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.documents.library import HYBRID_DEPTH, Library, fuse
from agent.documents.loads import FileInput
from agent.values import Hit
from tests import pdfs
from tests.conftest import STATES

FILLER = "Compilers translate source code into machine code in several careful passes. " * 6
FLAG_PAGE = "To enable transactional memory, compile with the -fgnu-tm flag. " + FILLER


@pytest.fixture
def backend() -> str:
    """The keyword index is in the state database: one Milvus backend is enough here."""
    return "lite"


@pytest.fixture(params=STATES)
def state(request: pytest.FixtureRequest) -> str:
    """SQLite's FTS5 and PostgreSQL's full-text search."""
    return str(request.param)


async def _load_flags(library: Library, tmp_path: Path, scope: str = "global") -> None:
    pages = [FILLER + f" Chapter {i} covers templates." for i in range(1, 9)]
    pages.insert(5, FLAG_PAGE)
    path = pdfs.make_pdf(tmp_path / f"{scope.replace(':', '_')}.pdf", pages)
    await library.load(scope, "cpp", [FileInput(path, name="cpp.pdf")], created_by="test")


async def test_keyword_search_finds_an_exact_flag(library: Library, tmp_path: Path) -> None:
    await _load_flags(library, tmp_path)
    found = await library.search_sources("global", ["cpp"], "-fgnu-tm", mode="keyword")
    best = found.results[0]
    assert best.page <= 6 <= best.last_page
    assert "-fgnu-tm" in best.text


async def test_hybrid_puts_the_exact_term_first(library: Library, tmp_path: Path) -> None:
    await _load_flags(library, tmp_path)
    found = await library.search_sources(
        "global", ["cpp"], "which flag enables -fgnu-tm transactional memory?", mode="hybrid"
    )
    assert "-fgnu-tm" in found.results[0].text
    assert 0 <= found.results[-1].score <= found.results[0].score <= 1.0


@pytest.mark.parametrize("state", ["postgresql"])
async def test_postgres_matches_passages_by_english_stems_and_skips_stop_words(
    library: Library, tmp_path: Path
) -> None:
    await _load_flags(library, tmp_path)
    # "transactions" and the page's "transactional" share the stem "transact".
    found = await library.search_sources(
        "global", ["cpp"], "what are the transactions?", mode="keyword"
    )
    assert found.results
    best = found.results[0]
    assert best.page <= 6 <= best.last_page
    # Only stop words: nothing to rank by, rather than every passage holding "the".
    none = await library.search_sources("global", ["cpp"], "what are the", mode="keyword")
    assert none.results == []


@pytest.mark.parametrize(
    "query", ['"', "NEAR(a b)", "a AND OR NOT", "*", "text:foo", "^start", 'x") or 1=1 --']
)
async def test_fts_syntax_in_queries_is_just_text(
    library: Library, tmp_path: Path, query: str
) -> None:
    await _load_flags(library, tmp_path)
    found = await library.search_sources("global", ["cpp"], query, mode="keyword")
    assert found.total > 0  # no error; matches are whatever the words match


async def test_keyword_search_respects_workspaces(library: Library, tmp_path: Path) -> None:
    await _load_flags(library, tmp_path, scope="discord:1")
    with_flag = await library.search_sources("discord:1", ["cpp"], "-fgnu-tm", mode="keyword")
    assert with_flag.results
    other = await library.search_attached("discord:2:9", "-fgnu-tm", mode="keyword")
    assert other.results == []


async def test_deleting_a_source_empties_the_keyword_index(
    library: Library, tmp_path: Path
) -> None:
    await _load_flags(library, tmp_path)
    [source] = await library.sources()
    await library.delete("global", "cpp")
    await _load_flags(library, tmp_path / "again")
    found = await library.search_sources("global", ["cpp"], "-fgnu-tm", mode="keyword", top_k=50)
    assert found.results and all(r.source_id != source.id for r in found.results)


def _hit(i: int, score: float = 0.0) -> Hit:
    return Hit(
        id=i,
        source_id=1,
        file_id=1,
        document="d",
        page=i,
        last_page=i,
        chunk=i,
        text="",
        score=score,
    )


# Median scores at some ranks over issue 12's development set (181 questions, 100 deep):
# cosine for dense, -bm25() for keyword.
DENSE_CURVE = {1: 0.55, 2: 0.50, 5: 0.426, 10: 0.369, 25: 0.306, 50: 0.253, 100: 0.192}
KEYWORD_CURVE = {1: 13.9, 2: 11.0, 5: 8.44, 10: 6.80, 25: 4.94, 50: 3.60, 100: 2.17}


def _ranking(ids: list[int], curve: dict[int, float]) -> list[Hit]:
    """Hits ``ids`` in that order, scored as a real ranking is at each rank (interpolated)."""
    marks = sorted(curve)

    def score(rank: int) -> float:
        upper = next(m for m in marks if m >= rank)
        lower = max(m for m in marks if m <= rank)
        if upper == lower:
            return curve[rank]
        share = (rank - lower) / (upper - lower)
        return curve[lower] + share * (curve[upper] - curve[lower])

    return [_hit(i, score(rank)) for rank, i in enumerate(ids, start=1)]


def test_fusion_scales_scores_and_rewards_agreement() -> None:
    dense = [_hit(1, 0.8), _hit(2, 0.7), _hit(3, 0.4)]
    keyword = [_hit(2, 10.0), _hit(4, 9.0), _hit(1, 4.0)]

    fused = fuse([dense, keyword])

    # Scaled: dense 1, 0.75, 0; keyword 1, 5/6, 0. Second and first beats first and last.
    assert [h.id for h in fused] == [2, 1, 4, 3]
    assert [h.score for h in fused] == pytest.approx([0.875, 0.5, 5 / 12, 0.0])
    assert fuse([[_hit(7, 0.3)], [_hit(7, 2.0)]])[0].score == pytest.approx(1.0)
    assert fuse([[], []]) == []


@pytest.mark.parametrize("lone_in", ["dense", "keyword"])
def test_a_lone_first_place_beats_passages_both_rankings_hold_mid_list(lone_in: str) -> None:
    # Issue 12: passage 1 is first in one ranking and missing from the other; 40 passages
    # both hold from 11th place down. Reciprocal rank at k = 60 put all 40 above it.
    shared = list(range(100, 140))
    with_lone = [1, *range(200, 209), *shared, *range(210, 260)]
    without = [*range(300, 310), *shared, *range(310, 360)]
    dense, keyword = (with_lone, without) if lone_in == "dense" else (without, with_lone)
    rankings = [_ranking(dense, DENSE_CURVE), _ranking(keyword, KEYWORD_CURVE)]
    assert len(rankings[0]) == len(rankings[1]) == HYBRID_DEPTH

    fused = [h.id for h in fuse(rankings)]

    assert fused.index(1) < 2  # only the other ranking's first can tie with it
    assert fused.index(1) < min(fused.index(i) for i in shared)


def test_agreement_near_the_top_still_beats_a_lone_first_place() -> None:
    dense = _ranking([1, 9, *range(1000, 1098)], DENSE_CURVE)
    keyword = _ranking([2, 9, *range(2000, 2098)], KEYWORD_CURVE)

    fused = [h.id for h in fuse([dense, keyword])]

    assert fused[:3] == [9, 1, 2]  # second in both, then the two lone firsts

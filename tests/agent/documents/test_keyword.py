"""Keyword (BM25) and hybrid search: exact terms, quoting, scope, fusion, deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.documents.library import HYBRID_DEPTH, RRF_K, Library, fuse
from agent.documents.loads import FileInput
from agent.values import Hit
from tests import pdfs

FILLER = "Compilers translate source code into machine code in several careful passes. " * 6
FLAG_PAGE = "To enable transactional memory, compile with the -fgnu-tm flag. " + FILLER


@pytest.fixture
def backend() -> str:
    """The keyword index is SQLite: one Milvus backend is enough here."""
    return "lite"


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
    assert 0 < found.results[-1].score <= found.results[0].score <= 1.0


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


def _hit(i: int) -> Hit:
    return Hit(
        id=i, source_id=1, file_id=1, document="d", page=i, last_page=i, chunk=i, text="", score=0.0
    )


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    dense = [_hit(1), _hit(2), _hit(3)]
    keyword = [_hit(3), _hit(4), _hit(1)]
    fused = fuse([dense, keyword])
    assert [h.id for h in fused] == [1, 3, 2, 4]
    k = RRF_K
    assert fused[0].score == pytest.approx((1 / (k + 1) + 1 / (k + 3)) / (2 / (k + 1)))
    assert fuse([[_hit(7)], [_hit(7)]])[0].score == pytest.approx(1.0)


def _rankings_with_a_lone_first() -> tuple[list[Hit], list[Hit]]:
    """Two rankings HYBRID_DEPTH deep: passage 1 is first in one and absent from the other;
    each list's next 9 are its own; the other 40 both hold, from 10th / 11th place down."""
    shared = [_hit(100 + i) for i in range(HYBRID_DEPTH - 10)]
    with_lone = [_hit(1), *(_hit(200 + i) for i in range(9)), *shared]
    without = [*(_hit(300 + i) for i in range(9)), *shared, _hit(400)]
    return with_lone, without


@pytest.mark.parametrize("lone_in", ["dense", "keyword"])
def test_a_lone_first_place_beats_passages_both_rankings_hold_mid_list(lone_in: str) -> None:
    with_lone, without = _rankings_with_a_lone_first()
    rankings = [with_lone, without] if lone_in == "dense" else [without, with_lone]
    # Issue 12: at k = 60 all 40 shared passages outranked it, out of the top 5 and the top 40.
    assert 1 not in [h.id for h in fuse(rankings, k=60)[:40]]

    fused = [h.id for h in fuse(rankings)]

    assert fused.index(1) < 5
    assert fused.index(1) < min(fused.index(100 + i) for i in range(HYBRID_DEPTH - 10))


def test_agreement_near_the_top_still_beats_a_lone_first_place() -> None:
    both = _hit(9)
    dense = [_hit(1), both, *(_hit(10 + i) for i in range(8))]
    keyword = [_hit(2), both, *(_hit(20 + i) for i in range(8))]

    fused = [h.id for h in fuse([dense, keyword])]

    assert fused[0] == 9  # second in both lists
    assert set(fused[1:3]) == {1, 2}

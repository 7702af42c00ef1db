"""Keyword (BM25) and hybrid search: exact terms, quoting, scope, fusion, deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.documents.library import Library, fuse
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
    assert fused[0].score == pytest.approx((1 / 61 + 1 / 63) / (2 / 61))
    assert fuse([[_hit(7)], [_hit(7)]])[0].score == pytest.approx(1.0)

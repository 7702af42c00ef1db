"""Passages know their section (from the PDF's outline), and contents pages are left out."""

from __future__ import annotations

from pathlib import Path

from agent.documents.chunk import SECTION_MARK, SECTION_TOKENS, Chunker
from agent.documents.embed import Embedder
from agent.documents.library import Library
from agent.documents.loads import FileInput
from agent.documents.outline import Heading, SectionTracker
from agent.documents.page_text import is_page_listing
from agent.documents.pdf import PdfLimits, inspect_pdf
from tests import pdfs
from tests.agent.documents.helpers import SCOPE

LIMITS = PdfLimits(max_bytes=10_000_000, max_pages=100, max_stream_bytes=10_000_000)
BREAKER = (
    "The breaker trips when the flux capacitor draws more than forty amperes for three seconds."
)
FILTER = "Rinse the intake filter under warm water every fortnight and let it dry overnight."
INTRO = "This handbook covers the Zorblax pump, model seven, for field technicians."


def _long(sentence: str) -> str:
    # Long enough that each page makes passages of its own rather than running on.
    filler = " ".join(f"Note {i} on this topic is kept for the record." for i in range(12))
    return f"{sentence} {filler}"


def _handbook(path: Path) -> Path:
    return pdfs.make_outlined_pdf(
        path,
        [
            [(0, "1 Introduction", _long(INTRO))],
            [
                (0, "2 Maintenance", _long("Routine care keeps the pump running.")),
                (1, "2.1 Cleaning", _long(FILTER)),
            ],
            [(1, "2.2 Electrical faults", _long(BREAKER))],
        ],
        contents=[f"{t} . . . . . . . . . . {n}" for t, n in CONTENTS],
    )


CONTENTS = [
    ("1 Introduction", 2),
    ("2 Maintenance", 3),
    ("2.1 Cleaning", 3),
    ("2.2 Electrical faults", 4),
    ("3 Spare parts", 5),
    ("4 Warranty", 6),
    ("5 Glossary", 7),
    ("Index", 8),
]


def test_the_outline_is_read_with_pages_and_levels(tmp_path: Path) -> None:
    info = inspect_pdf(_handbook(tmp_path / "handbook.pdf"), "handbook.pdf", LIMITS)
    assert info.headings == (
        Heading(page=2, level=0, title="1 Introduction"),
        Heading(page=3, level=0, title="2 Maintenance"),
        Heading(page=3, level=1, title="2.1 Cleaning"),
        Heading(page=4, level=1, title="2.2 Electrical faults"),
    )


def test_a_file_without_an_outline_has_no_headings(tmp_path: Path) -> None:
    info = inspect_pdf(pdfs.make_pdf(tmp_path / "plain.pdf", ["Just text."]), "plain", LIMITS)
    assert info.headings == ()


def test_a_section_starts_where_its_heading_is_on_the_page() -> None:
    tracker = SectionTracker(
        [Heading(1, 0, "Setup"), Heading(2, 1, "Wiring the relay"), Heading(4, 0, "Appendix")]
    )
    assert tracker.on_page(1, "Setup\nUnpack it.") == [(0, "Setup")]
    text = "the end of unpacking.\nWIRING  THE\nRELAY\nConnect red to red."
    assert tracker.on_page(2, text) == [(0, "Setup"), (22, "Setup > Wiring the relay")]
    # A page without headings stays in the section; a heading whose title extraction
    # renders differently takes effect at the top of its page.
    assert tracker.on_page(3, "More wiring.") == [(0, "Setup > Wiring the relay")]
    assert tracker.on_page(4, "Appx.") == [(0, "Appendix")]


def test_passages_start_with_their_section_within_the_models_budget(embedder: Embedder) -> None:
    long_title = " ".join(f"word{i}" for i in range(60))
    tracker = SectionTracker([Heading(1, 0, "Pumps"), Heading(2, 1, long_title)])
    chunker = Chunker(embedder.token_spans, max_tokens=embedder.max_text_tokens, sections=tracker)
    body = " ".join(f"Sentence {i} explains the relay setting {i} in detail." for i in range(60))
    chunks = chunker.feed(1, "Pumps\n" + body) + chunker.feed(2, body) + chunker.finish()
    assert chunks[0].text.startswith(f"{SECTION_MARK}Pumps\n\nPumps\nSentence 0 ")
    later = [c for c in chunks if c.page == 2]
    assert later and all(c.text.startswith(f"{SECTION_MARK}Pumps > word0 word1") for c in later)
    for chunk in chunks:
        heading = chunk.text.split("\n\n", 1)[0]
        assert len(embedder.token_spans(heading)) <= SECTION_TOKENS
        assert len(embedder.token_spans(chunk.text)) == chunk.tokens <= embedder.max_text_tokens


def test_contents_and_index_pages_are_recognised() -> None:
    contents = "\n".join(f"{t} . . . . . . . . {n}" for t, n in CONTENTS)
    index = "\n".join(f"glp_{name}, {n}, {n + 7}" for n, name in enumerate("abcdefghij", 3))
    prose = "\n".join(
        f"In 2024 the team measured {n} pumps and found that {n * 3} of them ran hot." * 2
        for n in range(10)
    )
    table = "\n".join(f"{n} {n * 2} {n * 3} {n * 4}" for n in range(12))
    # Prose full of figures whose wrapped lines end in numbers, as extraction gives it.
    wrapped = "\n".join(
        f"in mode {n}. Pump {n} valve {n + 1} opens at {n * 10} kilopascal and valve {n} at {n}"
        for n in range(12)
    )
    assert is_page_listing(contents) and is_page_listing(index)
    assert not is_page_listing(prose) and not is_page_listing(table)
    assert not is_page_listing(wrapped)
    assert not is_page_listing("1 Intro . . . . 3\n2 Use . . . . 5")  # too short to judge


async def test_loaded_passages_carry_sections_and_contents_pages_are_skipped(
    library: Library, tmp_path: Path
) -> None:
    path = _handbook(tmp_path / "handbook.pdf")
    await library.load(SCOPE, "pump", [FileInput(path)], created_by="t")
    found = await library.search_sources(SCOPE, ["pump"], "breaker trips amperes", top_k=10)
    assert found.results and all(hit.page > 1 for hit in found.results)
    texts = {hit.page: hit.text for hit in found.results}
    assert texts[4].startswith(f"{SECTION_MARK}2 Maintenance > 2.2 Electrical faults\n\n")
    assert BREAKER in texts[4]
    assert texts[2].startswith(f"{SECTION_MARK}1 Introduction\n\n")


async def test_a_file_of_contents_pages_only_is_refused_not_loaded_empty(
    library: Library, tmp_path: Path
) -> None:
    contents = "\n".join(f"{t} . . . . . . . . . . {n}" for t, n in CONTENTS)
    path = pdfs.make_pdf(tmp_path / "toc.pdf", [contents, contents])
    report = await library.load(SCOPE, "toc", [FileInput(path)], created_by="t")
    [failed] = report.failed
    assert failed.error is not None and "'toc.pdf' has nothing to search" in failed.error
    assert await library.sources() == []

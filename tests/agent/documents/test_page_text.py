"""Tests for agent.documents.page_text: cleaning page text, stripping running headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.documents.page_text import PageText, clean_page_text, strip_repeated_lines
from agent.documents.pdf import PdfLimits, extract_pages
from tests import pdfs

MIB = 1024 * 1024
LIMITS = PdfLimits(max_bytes=5 * MIB, max_pages=50, max_stream_bytes=8 * MIB)


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pdfs.make_manual_pdf(tmp_path_factory.mktemp("manual") / "manual.pdf", 6)


# ------------------------------------------------------------------- clean text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "\ufb01nd the \ufb02ow, \ufb00ect \ufb03x \ufb04e \ufb05 \ufb06",
            "find the flow, ffect ffix ffle st st",
        ),
        ("an exam-\nple of hyphen-\nation", "an example of hyphenation"),
        ("exam- \n  ple", "example"),
        ("soft\u00ad\nhyphen and in\u00admid", "softhyphen and inmid"),
        ("a state-of-the-art, well-known tool", "a state-of-the-art, well-known tool"),
        ("a well-known tool is well-\nknown", "a well-known tool is well-known"),
        ("Jean-\nPaul and PDF-\nfiles", "Jean-Paul and PDF-files"),
        ("ends with dash -\nnext line", "ends with dash -\nnext line"),
        ("3-\n4 pages", "3-\n4 pages"),
        ("lots   of \t\t spaces", "lots of spaces"),
        ("non\u00a0breaking\u2009thin", "non breaking thin"),
        ("nul\x00 and \x07bell\x1b", "nul and bell"),
        ("para one\nsame para\n\n\n\n  para two  ", "para one\nsame para\n\npara two"),
        ("windows\r\nline\rends", "windows\nline\nends"),
        (" \n \t \n", ""),
        ("m\u00b2 and \u00bd stay", "m\u00b2 and \u00bd stay"),
        ("hyphen-\n\nparagraph", "hyphen-\n\nparagraph"),
        # PDFium's line-end hyphen: U+FFFE, the line break dropped.
        (
            "Further\ufffemore a well-known, well\ufffeknown PDF\ufffefile",
            "Furthermore a well-known, well-known PDF-file",
        ),
        ("line end\ufffe", "line end-"),
    ],
)
def test_clean_page_text(raw: str, clean: str) -> None:
    assert clean_page_text(raw) == clean


# ------------------------------------------------------------- headers/footers


def _pages(*texts: str) -> list[PageText]:
    return [PageText(n, text) for n, text in enumerate(texts, start=1)]


def test_strip_repeated_headers_and_page_numbers() -> None:
    pages = _pages(*(f"ACME Manual v2\nBody of page {n}.\nMore {n}.\n{n}" for n in range(1, 6)))
    stripped = strip_repeated_lines(pages)
    assert [p.number for p in stripped] == [1, 2, 3, 4, 5]
    assert [p.text for p in stripped] == [f"Body of page {n}.\nMore {n}." for n in range(1, 6)]


def test_strip_needs_a_majority() -> None:
    pages = _pages(
        "Header\nbody one",
        "Header\nbody two",
        "Other\nbody three",
        "Another\nbody four",
    )
    assert strip_repeated_lines(pages) == pages  # 2 of 4 is not more than half


def test_strip_needs_four_pages_with_text() -> None:
    pages = _pages("Header\na\n1", "Header\nb\n2", "Header\nc\n3", "", "")
    assert strip_repeated_lines(pages) == pages


def test_strip_leaves_empty_pages_alone_and_uses_text_pages_as_base() -> None:
    # 3 footers among 4 text pages is a majority, even though the batch has 6 pages.
    pages = _pages("H\nbody a\nPage 1", "", "H\nbody b\nPage 3", "", "H\nc\nPage 5", "H\nd")
    stripped = strip_repeated_lines(pages)
    assert [p.text for p in stripped] == ["body a", "", "body b", "", "c", "d"]


def test_strip_removes_manual_header_and_footer(manual: Path) -> None:
    pages = strip_repeated_lines(extract_pages(manual, "m.pdf", 1, 6, LIMITS))
    for page in pages:
        assert pdfs.MANUAL_HEADER not in page.text
        assert "Page " not in page.text
        assert page.text.startswith(f"Section {page.number}:")
        assert pdfs.manual_marker(page.number) in page.text

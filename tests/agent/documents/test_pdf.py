"""Tests for agent.documents.pdf: validation, bomb guard, names in messages, extraction."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from pypdf import get_configuration

from agent.documents.display_names import safe_display_name
from agent.documents.page_text import PageText
from agent.documents.parse_pool import ParsePool
from agent.documents.pdf import PdfInfo, PdfLimits, ensure_text, extract_pages, inspect_pdf
from agent.errors import (
    CorruptDocument,
    DocumentError,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    NotAPdf,
    NoTextDocument,
)
from tests import pdfs

MIB = 1024 * 1024
LIMITS = PdfLimits(max_bytes=5 * MIB, max_pages=50, max_stream_bytes=8 * MIB)
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pdfs.make_manual_pdf(tmp_path_factory.mktemp("manual") / "manual.pdf", 6)


# ------------------------------------------------------------------ inspect_pdf


def test_inspect_reports_pages_hash_and_size(manual: Path) -> None:
    data = manual.read_bytes()
    assert inspect_pdf(manual, "manual.pdf", LIMITS) == PdfInfo(
        pages=6, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )


BAD_INPUTS: list[tuple[str, Callable[[Path], Path], type[DocumentError], str]] = [
    ("empty", pdfs.make_empty, EmptyDocument, "is empty"),
    ("html", pdfs.make_html_as_pdf, NotAPdf, "looks like an HTML page, perhaps a login"),
    ("garbage", pdfs.make_garbage_pdf, CorruptDocument, "damaged or incomplete"),
    ("truncated", pdfs.make_truncated_pdf, CorruptDocument, "damaged or incomplete"),
    ("encrypted", pdfs.make_encrypted_pdf, EncryptedDocument, "password-protected"),
]


@pytest.mark.parametrize(
    ("kind", "factory", "error", "phrase"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_inputs_raise_named_errors(
    tmp_path: Path,
    kind: str,
    factory: Callable[[Path], Path],
    error: type[DocumentError],
    phrase: str,
) -> None:
    path = factory(tmp_path / "stored-under-another-name.pdf")
    with pytest.raises(error) as caught:
        inspect_pdf(path, f"{kind}.pdf", LIMITS)
    message = str(caught.value)
    assert message.startswith(f"'{kind}.pdf' ")
    assert phrase in message
    assert caught.value.filename == f"{kind}.pdf"
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("kind", ["garbage", "truncated", "encrypted", "html"])
def test_extract_pages_applies_the_same_checks(tmp_path: Path, kind: str) -> None:
    factory, error = {case[0]: (case[1], case[2]) for case in BAD_INPUTS}[kind]
    path = factory(tmp_path / "f.pdf")
    with pytest.raises(error):
        extract_pages(path, "f.pdf", 1, 1, LIMITS)


def test_pdf_header_may_follow_junk_within_1024_bytes(tmp_path: Path) -> None:
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"X" * 500 + b"\n" + pdfs.pdf_bytes(["hello world"]))
    assert inspect_pdf(path, "junk.pdf", LIMITS).pages == 1
    assert extract_pages(path, "junk.pdf", 1, 1, LIMITS) == [PageText(1, "hello world")]


def test_pdf_header_after_1024_bytes_is_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "late.pdf"
    path.write_bytes(b"X" * 1100 + pdfs.pdf_bytes(["hello"]))
    with pytest.raises(NotAPdf, match="is not a PDF file"):
        inspect_pdf(path, "late.pdf", LIMITS)


def test_zip_gets_an_office_hint(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(NotAPdf, match="Office document"):
        inspect_pdf(path, "doc.pdf", LIMITS)


def test_owner_only_encryption_is_readable(tmp_path: Path) -> None:
    path = pdfs.make_encrypted_pdf(tmp_path / "statement.pdf", "", owner_password="owner")
    assert inspect_pdf(path, "statement.pdf", LIMITS).pages == 1
    pages = extract_pages(path, "statement.pdf", 1, 1, LIMITS)
    assert pages == [PageText(1, "Classified text behind a password.")]


def test_size_limit_is_checked_before_content(tmp_path: Path) -> None:
    path = pdfs.make_html_as_pdf(tmp_path / "big.pdf")  # not a PDF either
    limits = PdfLimits(max_bytes=100, max_pages=50, max_stream_bytes=MIB)
    with pytest.raises(DocumentTooLarge, match=r"^'big\.pdf' is .* over the .* limit"):
        inspect_pdf(path, "big.pdf", limits)
    with pytest.raises(DocumentTooLarge):
        extract_pages(path, "big.pdf", 1, 1, limits)


def test_a_pdf_without_pages_is_refused(tmp_path: Path) -> None:
    path = pdfs.make_pageless_pdf(tmp_path / "none.pdf")
    with pytest.raises(CorruptDocument, match=r"^'none\.pdf' has no pages: check that it is"):
        inspect_pdf(path, "none.pdf", LIMITS)


def test_empty_is_checked_before_size(tmp_path: Path) -> None:
    path = pdfs.make_empty(tmp_path / "e.pdf")
    with pytest.raises(EmptyDocument):
        inspect_pdf(path, "e.pdf", PdfLimits(max_bytes=1, max_pages=1, max_stream_bytes=1))


def test_page_limit(manual: Path) -> None:
    limits = PdfLimits(max_bytes=5 * MIB, max_pages=5, max_stream_bytes=8 * MIB)
    with pytest.raises(DocumentTooLarge, match=r"has 6 pages, over the 5-page limit"):
        inspect_pdf(manual, "manual.pdf", limits)
    # Exactly at the limit is fine.
    ok = PdfLimits(max_bytes=5 * MIB, max_pages=6, max_stream_bytes=8 * MIB)
    assert inspect_pdf(manual, "manual.pdf", ok).pages == 6


@pytest.mark.parametrize("field", ["max_bytes", "max_pages", "max_stream_bytes"])
def test_limits_must_be_positive(field: str) -> None:
    values = {"max_bytes": 1, "max_pages": 1, "max_stream_bytes": 1, field: 0}
    with pytest.raises(ValueError, match=field):
        PdfLimits(**values)


# ------------------------------------------------------------- decompression bombs


@pytest.mark.parametrize(
    ("layers", "in_form"),
    [(2, False), (1, False), (2, True)],
    ids=["nested-flate", "single-flate", "inside-form-xobject"],
)
def test_bomb_is_rejected_as_too_large(tmp_path: Path, layers: int, in_form: bool) -> None:
    path = pdfs.make_bomb_pdf(tmp_path / "bomb.pdf", layers=layers, in_form=in_form)
    assert path.stat().st_size < 300_000
    # The streams PDFium would inflate are checked (up to the cap) when the file is opened,
    # so inspection refuses it, before a load reads any page ...
    with pytest.raises(DocumentTooLarge) as caught:
        inspect_pdf(path, "bomb.pdf", LIMITS)
    assert str(caught.value).startswith("'bomb.pdf' expands to more than 8 MB when decompressed")
    # ... and extraction on its own does too, instead of inflating 256 MB.
    with pytest.raises(DocumentTooLarge) as caught:
        extract_pages(path, "bomb.pdf", 1, 1, LIMITS)
    assert str(caught.value).startswith("'bomb.pdf' expands to more than 8 MB when decompressed")


def test_bomb_in_an_embedded_font_is_rejected(tmp_path: Path) -> None:
    """PDFium inflates a page's font programs to read its text (256 MB here: 512 MB RSS)."""
    path = pdfs.make_bomb_pdf(tmp_path / "font.pdf", in_font=True)
    with pytest.raises(DocumentTooLarge, match=r"^'font\.pdf' expands to more than 8 MB"):
        inspect_pdf(path, "font.pdf", LIMITS)
    small = pdfs.make_bomb_pdf(tmp_path / "small.pdf", MIB, in_font=True)
    assert inspect_pdf(small, "small.pdf", LIMITS).pages == 1


def test_content_streams_of_a_page_count_together(tmp_path: Path) -> None:
    # Two 5 MB parts pass one by one, but PDFium concatenates them: 10 MB, over the 8 MB cap.
    path = pdfs.make_bomb_pdf(tmp_path / "parts.pdf", 5 * MIB, repeats=2)
    with pytest.raises(DocumentTooLarge, match="expands to more than 8 MB"):
        extract_pages(path, "parts.pdf", 1, 1, LIMITS)
    under = pdfs.make_bomb_pdf(tmp_path / "under.pdf", 3 * MIB, repeats=2)
    (page,) = extract_pages(under, "under.pdf", 1, 1, LIMITS)
    assert page.text == "Harmless looking text"


def test_a_file_changed_at_the_same_path_is_read_again(tmp_path: Path) -> None:
    """The process keeps the last file open between page ranges, for the same bytes only."""
    path = pdfs.make_pdf(tmp_path / "same.pdf", ["First version."])
    assert extract_pages(path, "same.pdf", 1, 1, LIMITS) == [PageText(1, "First version.")]
    pdfs.make_pdf(path, ["Second version."])
    assert extract_pages(path, "same.pdf", 1, 1, LIMITS) == [PageText(1, "Second version.")]
    pdfs.make_bomb_pdf(path)
    with pytest.raises(DocumentTooLarge):
        extract_pages(path, "same.pdf", 1, 1, LIMITS)
    # A lower page limit applies to the file already open.
    pdfs.make_pdf(path, ["One.", "Two."])
    assert len(extract_pages(path, "same.pdf", 1, 2, LIMITS)) == 2
    with pytest.raises(DocumentTooLarge, match="over the 1-page limit"):
        extract_pages(path, "same.pdf", 1, 1, replace(LIMITS, max_pages=1))


def test_a_process_ends_quietly_with_its_last_file_open(manual: Path) -> None:
    script = (
        "from pathlib import Path\n"
        "from agent.documents.pdf import PdfLimits, extract_pages\n"
        f"extract_pages(Path({str(manual)!r}), 'm.pdf', 1, 2, PdfLimits(10**7, 10, 10**7))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stderr == ""  # pypdfium2 warns at exit of documents left open


def test_pypdf_configuration_is_restored_after_a_call(tmp_path: Path) -> None:
    before = get_configuration()
    path = pdfs.make_bomb_pdf(tmp_path / "bomb.pdf")
    with pytest.raises(DocumentTooLarge):
        extract_pages(path, "bomb.pdf", 1, 1, LIMITS)
    assert get_configuration() is before


def test_bomb_does_not_use_much_memory(tmp_path: Path) -> None:
    path = pdfs.make_bomb_pdf(tmp_path / "bomb.pdf", 256 * MIB)
    # A fresh interpreter, so peak RSS reflects this extraction alone.
    script = textwrap.dedent(
        f"""
        import json, resource
        from pathlib import Path
        from agent.errors import DocumentTooLarge
        from agent.documents.pdf import PdfLimits, extract_pages
        limits = PdfLimits(max_bytes={5 * MIB}, max_pages=10, max_stream_bytes={8 * MIB})
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            extract_pages(Path({str(path)!r}), "bomb.pdf", 1, 1, limits)
            outcome = "no error"
        except DocumentTooLarge:
            outcome = "too large"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"outcome": outcome, "base_kb": base, "peak_kb": peak}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "too large"
    # ru_maxrss is in KiB on Linux; the bomb would need 256 MiB, the cap allows 8.
    assert result["peak_kb"] - result["base_kb"] < 96 * 1024
    assert done.stderr == ""  # pypdf's warnings do not leak to stderr


# ------------------------------------------------------------------ hostile names

HOSTILE_NAMES = [
    'it\'s "quoted".pdf',
    "../../etc/passwd/report.pdf",
    "C:\\Users\\me\\Desktop\\report.pdf",
    "bad\x00na\x07me\r\ninjected line.pdf",
    "\u202egpj.pdf",
    "x" * 500 + ".pdf",
    "",
    "/",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_names_produce_safe_messages(tmp_path: Path, name: str) -> None:
    path = pdfs.make_html_as_pdf(tmp_path / "upload.pdf")
    with pytest.raises(NotAPdf) as caught:
        inspect_pdf(path, name, LIMITS)
    message = str(caught.value)
    shown = caught.value.filename
    assert shown == safe_display_name(name)
    assert message.startswith(f"'{shown}' ")
    assert 0 < len(shown) <= 100
    assert "/" not in shown and "\\" not in shown and "'" not in shown
    assert all(ch.isprintable() for ch in message)
    assert "\u202e" not in message


def test_safe_display_name_details() -> None:
    assert safe_display_name("report.pdf") == "report.pdf"
    assert safe_display_name("a/b\\c/report.pdf") == "report.pdf"
    assert safe_display_name("dir/") == "dir"
    assert safe_display_name("my\nreport\t 2024.pdf") == "my report 2024.pdf"
    assert safe_display_name("nu\x00ll.pdf") == "null.pdf"
    assert safe_display_name("O'Brien.pdf") == "O\u2019Brien.pdf"
    assert safe_display_name("") == "unnamed.pdf"
    assert safe_display_name(" \x01 ") == "unnamed.pdf"
    long = safe_display_name("y" * 500 + ".pdf")
    assert len(long) == 100
    assert long.endswith("\u2026.pdf")
    assert safe_display_name("z" * 300) == "z" * 99 + "\u2026"


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_safe_display_name_is_idempotent(name: str) -> None:
    # Callers may sanitise once for storage and pass the result back in.
    once = safe_display_name(name)
    assert safe_display_name(once) == once


# ------------------------------------------------------------------- extraction


def test_extract_returns_page_accurate_text(manual: Path) -> None:
    pages = extract_pages(manual, "manual.pdf", 2, 4, LIMITS)
    assert [page.number for page in pages] == [2, 3, 4]
    for page in pages:
        assert pdfs.manual_marker(page.number) in page.text
        others = [n for n in range(1, 7) if n != page.number]
        assert not any(pdfs.manual_marker(n) in page.text for n in others)


def test_extract_single_page_and_whole_document(manual: Path) -> None:
    assert [p.number for p in extract_pages(manual, "m.pdf", 6, 6, LIMITS)] == [6]
    assert [p.number for p in extract_pages(manual, "m.pdf", 1, 6, LIMITS)] == list(range(1, 7))


@pytest.mark.parametrize(("first", "last"), [(0, 1), (3, 2), (5, 7)])
def test_extract_rejects_bad_ranges(manual: Path, first: int, last: int) -> None:
    with pytest.raises(ValueError, match="range"):
        extract_pages(manual, "m.pdf", first, last, LIMITS)


def test_extract_keeps_lines_and_empty_pages(tmp_path: Path) -> None:
    # Text extraction turns any vertical gap into one "\n", so the
    # blank line between the paragraphs comes back as a single line break.
    path = pdfs.make_pdf(tmp_path / "p.pdf", ["First para.\n\nSecond para.", "", "Third page."])
    pages = extract_pages(path, "p.pdf", 1, 3, LIMITS)
    assert pages == [
        PageText(1, "First para.\nSecond para."),
        PageText(2, ""),
        PageText(3, "Third page."),
    ]


def test_words_hyphenated_at_line_ends_are_joined(tmp_path: Path) -> None:
    # PDFium reports a hyphen that ends a line as U+FFFE, without the line break.
    text = "An exam-\nple of a well-\nknown well-known PDF-\nfile by Jean-\nPaul."
    path = pdfs.make_pdf(tmp_path / "hyphens.pdf", [text])
    (page,) = extract_pages(path, "hyphens.pdf", 1, 1, LIMITS)
    assert page.text == "An example of a well-known well-known PDF-file by Jean-Paul."


def test_extract_wraps_long_text_and_rejoins_ligatures(tmp_path: Path) -> None:
    sentence = "The office workflow is efficient and fluffy. "
    path = pdfs.make_pdf(tmp_path / "long.pdf", [sentence * 12])
    (page,) = extract_pages(path, "long.pdf", 1, 1, LIMITS)
    assert page.text.count("\n") >= 2  # multi_cell wrapped it
    assert " ".join(page.text.split()) == (sentence * 12).strip()


def test_scanned_pdf_has_no_text(tmp_path: Path) -> None:
    path = pdfs.make_scanned_pdf(tmp_path / "scan.pdf", pages=2)
    info = inspect_pdf(path, "scan.pdf", LIMITS)
    pages = extract_pages(path, "scan.pdf", 1, info.pages, LIMITS)
    assert [page.text for page in pages] == ["", ""]
    assert [page.images for page in pages] == [True, True]
    with pytest.raises(NoTextDocument) as caught:
        ensure_text(0, info.pages, "scan.pdf", pages_with_images=2)
    assert str(caught.value) == (
        "'scan.pdf' has no extractable text (it looks like scanned images): "
        "run OCR on it first, e.g. with ocrmypdf, then load it again."
    )


@pytest.mark.parametrize("kind", ["spaces", "bomb-of-spaces"])
def test_a_pdf_of_blank_pages_is_not_called_a_scan(tmp_path: Path, kind: str) -> None:
    """Pages whose text is only spaces (typed, or inflated from a small stream under the
    cap) hold no image: OCR would find nothing either (issue 13, item 13)."""
    if kind == "spaces":
        path = pdfs.make_pdf(tmp_path / "blank.pdf", ["   ", " "])
    else:
        path = pdfs.make_bomb_pdf(tmp_path / "blank.pdf", 2 * MIB, text=False)
    info = inspect_pdf(path, "blank.pdf", LIMITS)
    pages = extract_pages(path, "blank.pdf", 1, info.pages, LIMITS)
    assert not any(page.text.strip() or page.images for page in pages)
    with pytest.raises(NoTextDocument) as caught:
        ensure_text(0, info.pages, "blank.pdf", pages_with_images=0)
    assert str(caught.value) == (
        "'blank.pdf' has no text to search: its pages are blank or hold only spaces or"
        " drawings; check that it is the right file."
    )
    assert "OCR" not in str(caught.value)


def test_messages_say_load_not_upload(tmp_path: Path) -> None:
    """The same sentences reach the command line, where nothing is uploaded."""
    for path in (
        pdfs.make_html_as_pdf(tmp_path / "page.pdf"),
        pdfs.make_empty(tmp_path / "empty.pdf"),
        pdfs.make_encrypted_pdf(tmp_path / "locked.pdf"),
        pdfs.make_truncated_pdf(tmp_path / "cut.pdf"),
    ):
        with pytest.raises(DocumentError) as caught:
            inspect_pdf(path, path.name, LIMITS)
        assert "upload" not in str(caught.value), str(caught.value)


def test_ensure_text_accepts_any_text() -> None:
    ensure_text(1, 300, "mostly-scans.pdf", pages_with_images=299)


def test_pypdf_warnings_do_not_reach_the_root_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = pdfs.make_truncated_pdf(tmp_path / "t.pdf")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CorruptDocument):
        inspect_pdf(path, "t.pdf", LIMITS)
    names = {record.name for record in caplog.records}
    assert not any(name.startswith("pypdf") for name in names)
    assert "agent.documents.pdf" in names
    # The diversion lasts only for the call.
    pypdf_logger = logging.getLogger("pypdf")
    assert pypdf_logger.propagate is True
    assert pypdf_logger.handlers == []


# --------------------------------------------------------------- parser process


async def test_the_parser_process_imports_only_what_parsing_needs(manual: Path) -> None:
    """The worker is spawned per load: Milvus, onnxruntime or discord.py would cost it ~120 MB
    and a second of start-up."""
    pool = ParsePool(timeout=60)
    try:
        info = await pool.run("manual.pdf", inspect_pdf, manual, "manual.pdf", LIMITS)
        await pool.run("manual.pdf", extract_pages, manual, "manual.pdf", 1, info.pages, LIMITS)
        modules: list[str] = await pool.run("manual.pdf", eval, "sorted(__import__('sys').modules)")
    finally:
        pool.shutdown()
    assert "pypdfium2" in modules
    heavy = {"pymilvus", "onnxruntime", "numpy", "discord", "slack_bolt", "aiohttp", "bot"}
    assert heavy.isdisjoint(name.split(".")[0] for name in modules)
    assert not [name for name in modules if name.startswith("agent.documents.l")]


# ------------------------------------------------------------------- factories


def test_factories_are_deterministic(tmp_path: Path) -> None:
    a = pdfs.make_manual_pdf(tmp_path / "a.pdf", 3).read_bytes()
    b = pdfs.make_manual_pdf(tmp_path / "b.pdf", 3).read_bytes()
    assert a == b
    assert pdfs.make_scanned_pdf(tmp_path / "c.pdf").read_bytes() == (
        pdfs.make_scanned_pdf(tmp_path / "d.pdf").read_bytes()
    )
    assert len({pdfs.manual_marker(n) for n in range(1, 145)}) == 144

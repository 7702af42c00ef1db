"""The PDFium side of :mod:`agent.documents.pdf`, imported on the first call that reads a file.

The loader's process only hands :func:`~agent.documents.pdf.inspect_pdf` and
:func:`~agent.documents.pdf.extract_pages` to its parser process, so it never loads PDFium or
pypdf (~25 MB, 1 s of imports); the parser process does, once. PDFium is not thread-safe:
call this from one thread at a time.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]

from agent.documents import pdf_refusals
from agent.documents.page_text import PageText, clean_page_text
from agent.documents.pdf import PdfLimits
from agent.documents.stream_guard import check_streams
from agent.errors import DocumentError

__all__ = ["extract_range", "open_document", "reading"]

# Logged as the module whose calls these are, as before the split.
_log = logging.getLogger("agent.documents.pdf")

# Image objects inside form XObjects count too, a few levels down.
_IMAGE_DEPTH = 4


@contextmanager
def reading(name: str) -> Iterator[None]:
    """Turn whatever reading a file raises into DocumentErrors."""
    try:
        yield
    except DocumentError:
        raise
    except MemoryError as exc:
        _log.warning("%r exhausted memory while being read", name)
        raise pdf_refusals.out_of_memory(name) from exc
    except pdfium.PdfiumError as exc:
        _log.info("%r could not be parsed: %s", name, exc)
        raise pdf_refusals.corrupt(name) from exc
    except Exception as exc:
        _log.info("%r could not be parsed: %r", name, exc, exc_info=True)
        raise pdf_refusals.corrupt(name) from exc


@dataclass
class _Opened:
    data: bytes
    max_stream_bytes: int  # the cap its streams were checked against
    document: pdfium.PdfDocument
    pages: int


# The file last opened in this process, kept open: a load reads the same file range after
# range in its parser process, and reopening it would check every page's streams again for
# each range (1,151 pages in ranges of 16: 27 CPU-s, against 2.8 kept open).
_last: _Opened | None = None


@atexit.register  # before pypdfium2's own handler, which warns of documents left open
def _close_last() -> None:
    global _last
    if _last is not None:
        _last.document.close()
        _last = None


def open_document(data: bytes, name: str, limits: PdfLimits) -> tuple[pdfium.PdfDocument, int]:
    """Open (the empty password opens owner-only protected files), count pages and check the
    streams text extraction will inflate (inside :func:`reading`)."""
    global _last
    last = _last
    if last is None or last.data != data or last.max_stream_bytes != limits.max_stream_bytes:
        document = _load(data, name)
        try:
            check_streams(data, name, limits.max_stream_bytes)
        except BaseException:
            document.close()
            raise
        if last is not None:
            last.document.close()
        _last = last = _Opened(data, limits.max_stream_bytes, document, len(document))
    if last.pages > limits.max_pages:
        raise pdf_refusals.too_many_pages(name, last.pages, limits.max_pages)
    return last.document, last.pages


def _load(data: bytes, name: str) -> pdfium.PdfDocument:
    # Not PdfDocument(data): it raises for a file without pages with PDFium's last error,
    # which a successful load leaves as an earlier failure set it. ``data`` must outlive the
    # document (PDFium reads it in place): _Opened holds both.
    raw = pdfium_c.FPDF_LoadMemDocument64(data, len(data), None)
    if not raw:
        code = pdfium_c.FPDF_GetLastError()
        if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise pdf_refusals.encrypted(name)
        _log.info("%r could not be parsed: PDFium error %d", name, code)
        raise pdf_refusals.corrupt(name)
    document = pdfium.PdfDocument(raw)
    if len(document) == 0:
        document.close()
        raise pdf_refusals.no_pages(name)
    return document


def extract_range(document: pdfium.PdfDocument, name: str, first: int, last: int) -> list[PageText]:
    """Cleaned text of pages ``first``..``last``; a page PDFium cannot read is empty."""
    result: list[PageText] = []
    failed = 0
    for number in range(first, last + 1):
        try:
            page = _read_page(document, number)
        except pdfium.PdfiumError as exc:  # one bad page should not sink the rest
            _log.info("page %d of %r could not be read: %s", number, name, exc)
            failed += 1
            page = PageText(number=number, text="")
        result.append(page)
    if failed == len(result):
        raise pdf_refusals.corrupt(name)
    return result


def _read_page(document: pdfium.PdfDocument, number: int) -> PageText:
    page = document[number - 1]
    try:
        textpage = page.get_textpage()
        try:
            text = clean_page_text(str(textpage.get_text_range()))
        finally:
            textpage.close()
        # Images listed, none decoded: only a scan is worth OCR.
        images = not text.strip() and _shows_images(page)
    finally:
        page.close()
    return PageText(number=number, text=text, images=images)


def _shows_images(page: pdfium.PdfPage) -> bool:
    found = page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=_IMAGE_DEPTH)
    return next(found, None) is not None

"""PDF validation and per-page text extraction, with PDFium (pypdfium2).

Everything here is synchronous, so it can run in a worker process: :func:`inspect_pdf`
checks a file once, then :func:`extract_pages` can be called for page ranges in separate
processes, each opening the file itself. PDFium is not thread-safe: call these from one
thread at a time (the loader runs them in its parser process). PDFium and pypdf are imported
by the first call (:mod:`agent.documents.pdf_read`), not with this module.

Every failure a user can cause surfaces as a :class:`~agent.errors.DocumentError` whose
message names the file through :func:`~agent.documents.display_names.safe_display_name`
(sentences in :mod:`agent.documents.pdf_refusals`); PDFium's and pypdf's exceptions never
escape. PDFium inflates streams without a cap, so :mod:`agent.documents.stream_guard` checks
them first (decompression bombs). Page text is cleaned as :mod:`agent.documents.page_text`
describes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from agent.documents import pdf_refusals
from agent.documents.display_names import safe_display_name
from agent.documents.outline import Heading, read_headings
from agent.documents.page_text import PageText
from agent.errors import EmptyDocument, NoTextDocument

__all__ = [
    "PdfInfo",
    "PdfLimits",
    "ensure_text",
    "extract_pages",
    "inspect_pdf",
]

_log = logging.getLogger(__name__)

_MAGIC_WINDOW = 1024


@dataclass(frozen=True)
class PdfLimits:
    """Limits applied to every file; all must be positive.

    ``max_stream_bytes`` caps the decompressed size of any one stream (and of a page's
    content streams together). Peak memory while checking a stream near the cap is
    roughly four times the cap, because pypdf holds several copies.
    """

    max_bytes: int
    max_pages: int
    max_stream_bytes: int

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pages", "max_stream_bytes"):
            value = getattr(self, name)
            # pypdf reads 0 as "unlimited", which would silently disarm the bomb guard.
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"PdfLimits.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class PdfInfo:
    """What :func:`inspect_pdf` learned about a readable PDF."""

    pages: int
    sha256: str
    size: int
    headings: tuple[Heading, ...] = ()


def _read_checked(path: Path, name: str, limits: PdfLimits) -> bytes:
    """Return the file's bytes after the checks that need no parser."""
    size = path.stat().st_size
    if size == 0:
        raise EmptyDocument(name, f"'{name}' is empty (0 bytes): load the file again.")
    if size > limits.max_bytes:
        raise pdf_refusals.too_big(name, size, limits.max_bytes)
    with path.open("rb") as fh:
        # Read one byte past the limit in case the file grew after stat().
        data = fh.read(limits.max_bytes + 1)
    if not data:
        raise EmptyDocument(name, f"'{name}' is empty (0 bytes): load the file again.")
    if len(data) > limits.max_bytes:
        raise pdf_refusals.too_big(name, len(data), limits.max_bytes)
    if b"%PDF-" not in data[:_MAGIC_WINDOW]:
        raise pdf_refusals.not_a_pdf(name, data[:_MAGIC_WINDOW])
    return data


# -------------------------------------------------------------------- public API


def inspect_pdf(path: Path, display_name: str, limits: PdfLimits) -> PdfInfo:
    """Check that ``path`` is a readable PDF within ``limits`` and describe it.

    Checks, in order: empty file, byte size, ``%PDF-`` within the first 1024 bytes,
    parseable, not locked by a user password, page count, no stream that text extraction
    inflates past ``limits.max_stream_bytes`` (so a decompression bomb is refused here,
    before any page is read).

    Raises:
        EmptyDocument, DocumentTooLarge, NotAPdf, CorruptDocument,
        EncryptedDocument: messages name ``safe_display_name(display_name)``.
        OSError: ``path`` cannot be read (a caller bug, not the user's).
    """
    name = safe_display_name(display_name)
    data = _read_checked(path, name, limits)
    from agent.documents import pdf_read

    with pdf_read.reading(name):
        document, pages = pdf_read.open_document(data, name, limits)
        headings = read_headings(document)
    return PdfInfo(
        pages=pages, sha256=hashlib.sha256(data).hexdigest(), size=len(data), headings=headings
    )


def extract_pages(
    path: Path, display_name: str, first: int, last: int, limits: PdfLimits
) -> list[PageText]:
    """Return cleaned text of pages ``first``..``last`` (1-based, inclusive).

    Reads and re-checks the file itself so page ranges can run in separate processes (a
    process keeps the file it opened last open, for the next range of the same bytes). A
    page that PDFium cannot read yields empty text (logged); if every page in the range
    fails, the file is reported as corrupt. Pages without text are returned with
    ``text == ""``.

    Raises:
        DocumentTooLarge: a stream inflates past ``limits.max_stream_bytes``, or another
            limit is exceeded.
        CorruptDocument, EncryptedDocument, NotAPdf, EmptyDocument: as for
            :func:`inspect_pdf`.
        ValueError: the page range is empty or outside the document.
    """
    if first < 1 or last < first:
        raise ValueError(f"invalid page range {first}..{last}")
    name = safe_display_name(display_name)
    data = _read_checked(path, name, limits)
    from agent.documents import pdf_read

    result: list[PageText] = []
    with pdf_read.reading(name):
        document, pages = pdf_read.open_document(data, name, limits)
        # Checked after the guard: inside it a ValueError would read as "corrupt".
        if last <= pages:
            result = pdf_read.extract_range(document, name, first, last)
    if last > pages:
        raise ValueError(f"page range {first}..{last} is outside the {pages} pages of {name!r}")
    return result


def ensure_text(
    pages_with_text: int, total_pages: int, display_name: str, *, pages_with_images: int
) -> None:
    """Raise :class:`NoTextDocument` if none of ``total_pages`` pages had text: pages of images
    (a scan) are told to run OCR; blank pages, or pages of spaces, are not."""
    if pages_with_text > 0:
        return
    name = safe_display_name(display_name)
    _log.info("%r: no text on %d pages, %d with images", name, total_pages, pages_with_images)
    raise NoTextDocument(
        name,
        f"'{name}' has no extractable text (it looks like scanned images): "
        "run OCR on it first, e.g. with ocrmypdf, then load it again."
        if pages_with_images
        else f"'{name}' has no text to search: its pages are blank or hold only spaces or"
        " drawings; check that it is the right file.",
    )

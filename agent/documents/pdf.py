"""PDF validation and per-page text extraction.

Everything here is synchronous and free of shared state worth speaking of, so it
can run in a worker process: :func:`inspect_pdf` checks a file once, then
:func:`extract_pages` can be called for page ranges in separate processes, each
opening the file itself.

Every failure a user can cause surfaces as a :class:`~agent.errors.DocumentError`
whose message names the file through
:func:`~agent.documents.display_names.safe_display_name`. pypdf exceptions never
escape, and pypdf's own log warnings are collected per call (see
:mod:`agent.documents.pypdf_logs`) and logged as one summary line on this module's
logger instead of flooding the root logger. Page text is cleaned as
:mod:`agent.documents.page_text` describes.

Resource limits (decompression bombs) use pypdf's ``Configuration``, which
pypdf 7 keeps in a ``ContextVar``: :func:`inspect_pdf` and :func:`extract_pages`
apply it for the duration of the call only, so nothing changes at import time or
for other pypdf users in the process. Writing the old module constants such as
``pypdf.filters.ZLIB_MAX_OUTPUT_LENGTH`` is not an option in pypdf 7: every
``PdfReader`` then raises ``DeprecationError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pypdf import Configuration, PasswordType, PdfReader, apply_configuration, get_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

from agent.documents.display_names import safe_display_name
from agent.documents.outline import Heading, read_headings
from agent.documents.page_text import PageText, clean_page_text
from agent.documents.pypdf_logs import ROUTER, PypdfWarnings
from agent.errors import (
    CorruptDocument,
    DocumentError,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    NotAPdf,
    NoTextDocument,
)

__all__ = [
    "PdfInfo",
    "PdfLimits",
    "ensure_text",
    "extract_pages",
    "inspect_pdf",
]

_log = logging.getLogger(__name__)

_MIB = 1024 * 1024
_MAGIC_WINDOW = 1024


@dataclass(frozen=True)
class PdfLimits:
    """Limits applied to every file; all must be positive.

    ``max_stream_bytes`` caps the decompressed size of any one stream (and of a
    page's content streams together). Peak memory while extracting a page near
    the cap is roughly four times the cap, because pypdf holds several copies.
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


# ------------------------------------------------------------------------ messages


def _mb(size: int) -> str:
    value = size / _MIB
    return f"{value:.0f} MB" if value >= 10 or value.is_integer() else f"{value:.1f} MB"


def _corrupt(name: str) -> CorruptDocument:
    return CorruptDocument(
        name,
        f"'{name}' is damaged or incomplete and cannot be read: "
        "download or export it again and load the new copy.",
    )


def _encrypted(name: str) -> EncryptedDocument:
    return EncryptedDocument(
        name, f"'{name}' is password-protected: remove the password and load it again."
    )


def _expands(name: str, limits: PdfLimits) -> DocumentTooLarge:
    return DocumentTooLarge(
        name,
        f"'{name}' expands to more than {_mb(limits.max_stream_bytes)} when decompressed, "
        "more than is safe to read: remove or simplify its oversized pages, "
        "or split it, and load it again.",
    )


def _limit_error(name: str, limits: PdfLimits, exc: BaseException) -> DocumentTooLarge:
    text = str(exc).lower()
    # pypdf raises LimitReachedError for many limits; only size limits get the
    # "expands to" wording, the rest (token budgets, tree depths) are "complex".
    if any(
        word in text
        for word in ("decompress", "output bytes", "decoding work", "buffer size", "image size")
    ):
        return _expands(name, limits)
    return DocumentTooLarge(
        name,
        f"'{name}' is too complex to read safely: "
        "save it as a new PDF (for example with \u201cPrint to PDF\u201d) and load that.",
    )


_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<script")
_HTML_HINT = (
    "looks like an HTML page, perhaps a login or error page saved instead of the document: "
    "open the link in a browser, download the PDF itself and load that."
)
# Binary formats people upload by mistake, recognised by their leading bytes.
_MAGIC_HINTS: tuple[tuple[tuple[bytes, ...], str], ...] = (
    (
        (b"pk\x03\x04",),
        "looks like a ZIP archive or an Office document: export it as PDF and load that.",
    ),
    (
        (b"\xd0\xcf\x11\xe0",),
        "looks like an old Office document: export it as PDF and load that.",
    ),
    ((b"{\\rtf",), "looks like an RTF document: export it as PDF and load that."),
    (
        (b"\x89png", b"\xff\xd8\xff", b"gif8", b"ii*\x00", b"mm\x00*"),
        "looks like an image: convert it to PDF and load that.",
    ),
)


def _not_a_pdf(name: str, head: bytes) -> NotAPdf:
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    # HTML markers may come after comments or whitespace, so search the whole window.
    if any(marker in probe for marker in _HTML_MARKERS):
        return NotAPdf(name, f"'{name}' is not a PDF, it {_HTML_HINT}")
    for signatures, hint in _MAGIC_HINTS:
        if probe.startswith(signatures):
            return NotAPdf(name, f"'{name}' is not a PDF, it {hint}")
    return NotAPdf(name, f"'{name}' is not a PDF file: load the PDF itself.")


# ------------------------------------------------------------------ pypdf guard


def _pypdf_configuration(limits: PdfLimits) -> Configuration:
    cap = limits.max_stream_bytes
    # Start from the current configuration so any caller-level pypdf settings survive.
    return get_configuration().with_overwrites(
        **{
            # Output caps of every decoder that can inflate data.
            "zlib_maximum_output_length": cap,
            "lzw_maximum_output_length": cap,
            "run_length_maximum_output_length": cap,
            "brotli_maximum_output_length": cap,
            "jbig2_maximum_output_length": cap,
            "image_maximum_buffer_size": cap,
            # A page's /Contents array is concatenated: cap the sum, not only each part.
            "array_based_stream_maximum_output_length": cap,
            # Bytes fed through a stream's filter chain; bounds stacked-filter CPU time.
            "stream_decoding_work_maximum_length": 4 * cap,
        }
    )


@contextmanager
def _reading(name: str, limits: PdfLimits) -> Iterator[PypdfWarnings]:
    """Run pypdf work under our limits and turn whatever it raises into DocumentErrors."""
    state = PypdfWarnings()
    with apply_configuration(_pypdf_configuration(limits)), ROUTER.capture(state):
        try:
            yield state
        except DocumentError:
            raise
        except LimitReachedError as exc:
            _log.info("%r hit a pypdf limit: %s", name, exc)
            raise _limit_error(name, limits, exc) from exc
        except MemoryError as exc:
            _log.warning("%r exhausted memory while being read", name)
            raise DocumentTooLarge(
                name,
                f"'{name}' needs more memory to read than this server has: "
                "split it into smaller files and load them separately.",
            ) from exc
        except FileNotDecryptedError as exc:
            raise _encrypted(name) from exc
        except DependencyError as exc:
            # AES needs the `cryptography` package; without it even an owner-only
            # protected file cannot be read. The operator can fix this, the user can too.
            _log.warning(
                "cannot decrypt %r, is the 'cryptography' package installed? %s", name, exc
            )
            raise _encrypted(name) from exc
        except Exception as exc:
            # Hostile or broken files make pypdf raise almost anything (KeyError,
            # struct.error, RecursionError, ...); to the user it is all "damaged".
            # Tracebacks only for exception types pypdf did not mean to raise.
            _log.info(
                "%r could not be parsed: %r", name, exc, exc_info=not isinstance(exc, PyPdfError)
            )
            raise _corrupt(name) from exc
    if state.count:
        _log.info(
            "pypdf reported %d problem(s) in %r, first: %s", state.count, name, state.first[0]
        )
    if state.swallowed_limit is not None:
        raise _limit_error(name, limits, state.swallowed_limit) from state.swallowed_limit


def _read_checked(path: Path, name: str, limits: PdfLimits) -> bytes:
    """Return the file's bytes after the checks that need no parser."""
    size = path.stat().st_size
    if size == 0:
        raise EmptyDocument(name, f"'{name}' is empty (0 bytes): load the file again.")
    if size > limits.max_bytes:
        raise _too_big(name, size, limits)
    with path.open("rb") as fh:
        # Read one byte past the limit in case the file grew after stat().
        data = fh.read(limits.max_bytes + 1)
    if not data:
        raise EmptyDocument(name, f"'{name}' is empty (0 bytes): load the file again.")
    if len(data) > limits.max_bytes:
        raise _too_big(name, len(data), limits)
    if b"%PDF-" not in data[:_MAGIC_WINDOW]:
        raise _not_a_pdf(name, data[:_MAGIC_WINDOW])
    return data


def _too_big(name: str, size: int, limits: PdfLimits) -> DocumentTooLarge:
    return DocumentTooLarge(
        name,
        f"'{name}' is {_mb(size)}, over the {_mb(limits.max_bytes)} limit: "
        "split or compress it and load it again.",
    )


def _open_reader(data: bytes, name: str, limits: PdfLimits) -> tuple[PdfReader, int]:
    """Open, decrypt if the empty password works, and count pages (inside ``_reading``)."""
    reader = PdfReader(io.BytesIO(data), strict=False)
    # pypdf already tried the empty user password; files with only an owner
    # password (print/copy restrictions) open that way and are fine to read.
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise _encrypted(name)
    pages = len(reader.pages)
    if pages == 0:
        raise CorruptDocument(
            name, f"'{name}' has no pages: check that it is the right file and load it again."
        )
    if pages > limits.max_pages:
        raise DocumentTooLarge(
            name,
            f"'{name}' has {pages:,} pages, over the {limits.max_pages:,}-page limit: "
            "split it into smaller files and load them separately.",
        )
    return reader, pages


# -------------------------------------------------------------------- public API


def inspect_pdf(path: Path, display_name: str, limits: PdfLimits) -> PdfInfo:
    """Check that ``path`` is a readable PDF within ``limits`` and describe it.

    Checks, in order: empty file, byte size, ``%PDF-`` within the first 1024
    bytes, parseable by pypdf, not locked by a user password, page count.
    Content streams are not decoded here, so decompression bombs are caught by
    :func:`extract_pages`.

    Raises:
        EmptyDocument, DocumentTooLarge, NotAPdf, CorruptDocument,
        EncryptedDocument: messages name ``safe_display_name(display_name)``.
        OSError: ``path`` cannot be read (a caller bug, not the user's).
    """
    name = safe_display_name(display_name)
    data = _read_checked(path, name, limits)
    with _reading(name, limits):
        reader, pages = _open_reader(data, name, limits)
        headings = read_headings(reader)
    return PdfInfo(
        pages=pages, sha256=hashlib.sha256(data).hexdigest(), size=len(data), headings=headings
    )


def extract_pages(
    path: Path, display_name: str, first: int, last: int, limits: PdfLimits
) -> list[PageText]:
    """Return cleaned text of pages ``first``..``last`` (1-based, inclusive).

    Opens and re-checks the file itself so page ranges can run in separate
    processes. A page that pypdf cannot decode yields empty text (logged); if
    every page in the range fails, the file is reported as corrupt. Pages
    without text are returned with ``text == ""``.

    Raises:
        DocumentTooLarge: a stream inflates past ``limits.max_stream_bytes``, or
            another size limit is exceeded.
        CorruptDocument, EncryptedDocument, NotAPdf, EmptyDocument: as for
            :func:`inspect_pdf`.
        ValueError: the page range is empty or outside the document.
    """
    if first < 1 or last < first:
        raise ValueError(f"invalid page range {first}..{last}")
    name = safe_display_name(display_name)
    data = _read_checked(path, name, limits)
    result: list[PageText] = []
    with _reading(name, limits) as warnings:
        reader, pages = _open_reader(data, name, limits)
        # Checked after the guard: inside it a ValueError would read as "corrupt".
        if last <= pages:
            result = _extract_range(reader, name, first, last, warnings)
    if last > pages:
        raise ValueError(f"page range {first}..{last} is outside the {pages} pages of {name!r}")
    return result


def _extract_range(
    reader: PdfReader, name: str, first: int, last: int, warnings: PypdfWarnings
) -> list[PageText]:
    result: list[PageText] = []
    failed = 0
    for number in range(first, last + 1):
        try:
            raw = reader.pages[number - 1].extract_text()
        except (LimitReachedError, MemoryError):
            raise
        except Exception as exc:  # one bad page should not sink the rest
            _log.info("page %d of %r could not be read: %r", number, name, exc)
            failed += 1
            raw = ""
        if warnings.swallowed_limit is not None:
            # Stop at the first bomb instead of grinding through the rest of the range.
            raise warnings.swallowed_limit
        text, images = clean_page_text(raw), False
        if not text.strip():  # images listed, none decoded: only a scan is worth OCR
            with contextlib.suppress(Exception):
                images = len(reader.pages[number - 1].images) > 0
        result.append(PageText(number=number, text=text, images=images))
    if failed == len(result):
        raise _corrupt(name)
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

"""The sentences a PDF is refused with, one :class:`~agent.errors.DocumentError` each.

Every message starts with the file's display name in quotes (already made safe by
:func:`~agent.documents.display_names.safe_display_name`) and says what the user can do.
"""

from __future__ import annotations

from agent.errors import CorruptDocument, DocumentTooLarge, EncryptedDocument, NotAPdf

__all__ = [
    "corrupt",
    "encrypted",
    "expands",
    "limit_error",
    "no_pages",
    "not_a_pdf",
    "out_of_memory",
    "too_big",
    "too_many_pages",
]

_MIB = 1024 * 1024


def _mb(size: int) -> str:
    value = size / _MIB
    return f"{value:.0f} MB" if value >= 10 or value.is_integer() else f"{value:.1f} MB"


def corrupt(name: str) -> CorruptDocument:
    return CorruptDocument(
        name,
        f"'{name}' is damaged or incomplete and cannot be read: "
        "download or export it again and load the new copy.",
    )


def no_pages(name: str) -> CorruptDocument:
    return CorruptDocument(
        name, f"'{name}' has no pages: check that it is the right file and load it again."
    )


def encrypted(name: str) -> EncryptedDocument:
    return EncryptedDocument(
        name, f"'{name}' is password-protected: remove the password and load it again."
    )


def too_big(name: str, size: int, max_bytes: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        name,
        f"'{name}' is {_mb(size)}, over the {_mb(max_bytes)} limit: "
        "split or compress it and load it again.",
    )


def too_many_pages(name: str, pages: int, max_pages: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        name,
        f"'{name}' has {pages:,} pages, over the {max_pages:,}-page limit: "
        "split it into smaller files and load them separately.",
    )


def out_of_memory(name: str) -> DocumentTooLarge:
    return DocumentTooLarge(
        name,
        f"'{name}' needs more memory to read than this server has: "
        "split it into smaller files and load them separately.",
    )


def expands(name: str, max_stream_bytes: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        name,
        f"'{name}' expands to more than {_mb(max_stream_bytes)} when decompressed, "
        "more than is safe to read: remove or simplify its oversized pages, "
        "or split it, and load it again.",
    )


def limit_error(name: str, max_stream_bytes: int, exc: BaseException) -> DocumentTooLarge:
    """The refusal for a pypdf ``LimitReachedError``."""
    text = str(exc).lower()
    # pypdf raises LimitReachedError for many limits; only size limits get the
    # "expands to" wording, the rest (token budgets, tree depths) are "complex".
    if any(
        word in text
        for word in ("decompress", "output bytes", "decoding work", "buffer size", "image size")
    ):
        return expands(name, max_stream_bytes)
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


def not_a_pdf(name: str, head: bytes) -> NotAPdf:
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    # HTML markers may come after comments or whitespace, so search the whole window.
    if any(marker in probe for marker in _HTML_MARKERS):
        return NotAPdf(name, f"'{name}' is not a PDF, it {_HTML_HINT}")
    for signatures, hint in _MAGIC_HINTS:
        if probe.startswith(signatures):
            return NotAPdf(name, f"'{name}' is not a PDF, it {hint}")
    return NotAPdf(name, f"'{name}' is not a PDF file: load the PDF itself.")

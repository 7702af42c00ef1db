"""Factories for test PDFs, good and bad.

Every ``make_*`` function writes one file at ``path`` (creating parent folders)
and returns that path. Output is deterministic (fixed dates, seeded randomness) except where
a function says otherwise, so tests can compare hashes and exact text.

Text PDFs use fpdf2's core Helvetica font, which only covers latin-1: keep page
texts latin-1 or fpdf2 raises.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter

__all__ = [
    "MANUAL_FOOTER",
    "MANUAL_HEADER",
    "make_bomb_pdf",
    "make_empty",
    "make_encrypted_pdf",
    "make_garbage_pdf",
    "make_html_as_pdf",
    "make_manual_pdf",
    "make_outlined_pdf",
    "make_pageless_pdf",
    "make_pdf",
    "make_scanned_pdf",
    "make_truncated_pdf",
    "manual_marker",
    "pdf_bytes",
]

_FIXED_DATE = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

MANUAL_HEADER = "Zorblax Field Manual - Restricted Edition"
"""First line of every page of :func:`make_manual_pdf`, for header-stripping tests."""

MANUAL_FOOTER = "Page {page} of {total}"
"""Last line of every page of :func:`make_manual_pdf` (formatted per page)."""


def _prepare(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class _FixedIdPdf(FPDF):
    """fpdf2 derives /ID from content and time; pin it so output is byte-stable."""

    def file_id(self) -> str:
        return "<00112233445566778899AABBCCDDEEFF><00112233445566778899AABBCCDDEEFF>"


def _new_fpdf() -> FPDF:
    pdf = _FixedIdPdf(format="A4")
    pdf.set_creation_date(_FIXED_DATE)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_font("Helvetica", size=11)
    return pdf


def pdf_bytes(pages: Sequence[str]) -> bytes:
    """Return a text PDF with one page per entry of ``pages`` (in memory)."""
    pdf = _new_fpdf()
    for text in pages:
        pdf.add_page()
        if text:
            # multi_cell wraps long lines and honours "\n"; an over-long page
            # simply flows onto extra pages, which tests should avoid.
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def make_pdf(path: Path, pages: Sequence[str]) -> Path:
    """Write a text PDF whose page ``i`` shows ``pages[i]`` (latin-1 text)."""
    path = _prepare(path)
    path.write_bytes(pdf_bytes(pages))
    return path


def make_outlined_pdf(
    path: Path, pages: Sequence[Sequence[tuple[int, str, str]]], contents: Sequence[str] = ()
) -> Path:
    """Write a PDF with an outline: each page is a list of ``(level, heading, body)``.

    Every heading is printed on its own line above its body and bookmarked at that level
    (0 = chapter). ``contents`` lines, if any, make a first page of their own, before the rest
    (a table of contents as ``Title .... 3`` lines).
    """
    path = _prepare(path)
    pdf = _new_fpdf()
    if contents:
        pdf.add_page()
        pdf.multi_cell(0, 6, "\n".join(contents))
    for sections in pages:
        pdf.add_page()
        for level, heading, body in sections:
            pdf.start_section(heading, level=level)
            pdf.multi_cell(0, 6, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
    path.write_bytes(bytes(pdf.output()))
    return path


def make_pageless_pdf(path: Path) -> Path:
    """Write a well-formed PDF whose page tree holds no page."""
    path = _prepare(path)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    path.write_bytes(_raw_pdf(objects))
    return path


def make_encrypted_pdf(
    path: Path,
    password: str = "secret",
    *,
    owner_password: str | None = None,
    pages: Sequence[str] = ("Classified text behind a password.",),
) -> Path:
    """Write an RC4-128 encrypted PDF that needs ``password`` to open.

    With ``password=""`` and an ``owner_password`` the file is encrypted but opens
    without a password (permissions only), like many bank statements.
    Not byte-deterministic: pypdf draws a random second file identifier.
    """
    path = _prepare(path)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    # RC4 works with pypdf's pure-Python fallback; AES would need `cryptography`.
    writer.encrypt(user_password=password, owner_password=owner_password, algorithm="RC4-128")
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def _scan_image(page: int) -> Image.Image:
    # Grey "lines of text" drawn as pixels: what a scanner produces, no text layer.
    image = Image.new("L", (420, 594), color=255)
    draw = ImageDraw.Draw(image)
    rng = random.Random(page)
    y = 40
    while y < 550:
        width = rng.randint(200, 360)
        draw.rectangle((30, y, 30 + width, y + 6), fill=60)
        y += 16
    return image


def make_scanned_pdf(path: Path, pages: int = 2) -> Path:
    """Write a PDF whose ``pages`` pages are images only, without a text layer."""
    path = _prepare(path)
    pdf = _new_fpdf()
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.image(_scan_image(number), x=0, y=0, w=pdf.w, h=pdf.h)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_truncated_pdf(path: Path) -> Path:
    """Write the first half of a valid multi-page PDF (an interrupted download)."""
    path = _prepare(path)
    data = pdf_bytes([f"Page {n} of a document that was cut short." for n in range(1, 7)])
    path.write_bytes(data[: len(data) // 2])
    return path


def make_garbage_pdf(path: Path, size: int = 4096) -> Path:
    """Write a ``%PDF-1.4`` header followed by ``size`` seeded random bytes."""
    path = _prepare(path)
    path.write_bytes(b"%PDF-1.4\n" + random.Random(1234).randbytes(size))
    return path


_LOGIN_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - Document Portal</title></head>
<body>
  <form method="post" action="/login">
    <label>Email <input type="email" name="email"></label>
    <label>Password <input type="password" name="password"></label>
    <button type="submit">Sign in</button>
  </form>
</body>
</html>
"""


def make_html_as_pdf(path: Path) -> Path:
    """Write an HTML login page under a ``.pdf`` name (a failed browser download)."""
    path = _prepare(path)
    path.write_bytes(_LOGIN_PAGE)
    return path


def make_empty(path: Path) -> Path:
    """Write a zero-byte file."""
    path = _prepare(path)
    path.write_bytes(b"")
    return path


@lru_cache(maxsize=8)
def _deflated_spaces(inflated_bytes: int, layers: int) -> bytes:
    """Return ``inflated_bytes`` spaces, zlib-compressed ``layers`` times.

    Compressing 256 MB honestly takes most of a second, so the stream is
    assembled instead: after a full flush deflate forgets its history, so every
    further 1 MiB chunk compresses to the same bytes and can be repeated. Only
    the trailing Adler-32 checksum has to be computed over the whole input.
    """
    chunk_size = 1 << 20
    chunk = b" " * chunk_size
    whole, rest = divmod(inflated_bytes, chunk_size)
    compressor = zlib.compressobj(9)
    parts: list[bytes] = []
    if whole:
        parts.append(compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH))
    if whole > 1:
        segment = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
        again = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
        assert segment == again, "deflate output after a full flush should repeat"
        parts.append(segment * (whole - 1))
    tail = compressor.compress(chunk[:rest]) + compressor.flush()
    checksum = 1
    for _ in range(whole):
        checksum = zlib.adler32(chunk, checksum)
    checksum = zlib.adler32(chunk[:rest], checksum)
    # The compressor saw fewer chunks than the stream claims: patch the checksum.
    parts.append(tail[:-4] + struct.pack(">I", checksum))
    data = b"".join(parts)
    # Deflate tops out near 1000:1; another layer squeezes 256 KB to a few hundred bytes.
    for _ in range(layers - 1):
        data = zlib.compress(data, 9)
    return data


def _raw_pdf(objects: Sequence[bytes]) -> bytes:
    """Assemble numbered objects (1-based, object 1 is the catalog) with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    size = len(objects) + 1
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref_at)
    return bytes(out)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def make_bomb_pdf(
    path: Path,
    inflated_bytes: int = 256 * 1024 * 1024,
    *,
    layers: int = 2,
    in_form: bool = False,
    in_font: bool = False,
    repeats: int = 1,
    text: bool = True,
) -> Path:
    """Write a one-page PDF whose content inflates to ``inflated_bytes`` of spaces.

    ``layers`` stacks FlateDecode filters (2 gives a file under 2 KB for 256 MB).
    With ``in_form`` the bomb sits in a form XObject the page draws, a path where
    pypdf swallows decoding errors during text extraction; with ``in_font`` it is the
    embedded font program (``/FontFile2``) of the page's font. Otherwise the page's content
    stream array lists the bomb ``repeats`` times after the harmless text.
    The page also shows a line of real text before the bomb, unless ``text`` is False (the
    spaces are then all it says).
    """
    path = _prepare(path)
    bomb = _deflated_spaces(inflated_bytes, layers)
    filters = b"/Filter [" + b" ".join([b"/FlateDecode"] * layers) + b"]"
    shown = b"(Harmless looking text)" if text else b"(   )"
    text_op = b"BT /F1 12 Tf 72 720 Td " + shown + b" Tj ET\n"
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    if in_font:
        page_content = _stream(b"", text_op)
        resources = b"<< /Font << /F1 5 0 R >> >>"
        font = (
            b"<< /Type /Font /Subtype /TrueType /BaseFont /Bomb /FirstChar 32 /LastChar 32"
            b" /Widths [500] /FontDescriptor 6 0 R >>"
        )
        extra = [
            b"<< /Type /FontDescriptor /FontName /Bomb /Flags 32 /FontBBox [0 0 500 500]"
            b" /ItalicAngle 0 /Ascent 500 /Descent 0 /CapHeight 500 /StemV 80"
            b" /FontFile2 7 0 R >>",
            _stream(filters, bomb),
        ]
    elif in_form:
        page_content = _stream(b"", text_op + b"/Fm0 Do\n")
        resources = b"<< /Font << /F1 5 0 R >> /XObject << /Fm0 6 0 R >> >>"
        extra = [
            _stream(
                b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                # Without /Resources pypdf skips the form unread, defusing the test.
                b"/Resources << /Font << /F1 5 0 R >> >> " + filters,
                bomb,
            )
        ]
    else:
        # A content stream array: harmless text first, then the bomb.
        page_content = _stream(b"", text_op)
        resources = b"<< /Font << /F1 5 0 R >> >>"
        extra = [_stream(filters, bomb)]
    contents = b"[4 0 R" + b" 6 0 R" * repeats + b"]" if not (in_form or in_font) else b"4 0 R"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
        + resources
        + b" /Contents "
        + contents
        + b" >>",
        page_content,
        font,
        *extra,
    ]
    path.write_bytes(_raw_pdf(objects))
    return path


_SYLLABLES = (
    "zor",
    "blax",
    "quin",
    "trel",
    "vosh",
    "mira",
    "gund",
    "pel",
    "ax",
    "tor",
    "lum",
    "dex",
)

_FILLER = (
    "Operators should inspect the housing before each shift and record any wear in the log book.",
    "Replacement parts are listed in the appendix together with their supplier codes.",
    "Calibration must be repeated after transport, after a firmware update, "
    "and at least once a month.",
    "If the indicator lamp stays amber for more than ten minutes, "
    "stop the unit and call the service desk.",
)


def _marker_word(page: int) -> str:
    n = len(_SYLLABLES)
    index = page - 1
    return _SYLLABLES[index % n] + _SYLLABLES[(index // n + 1) % n]


def manual_marker(page: int) -> str:
    """The unique sentence printed on ``page`` (1-based) of :func:`make_manual_pdf`.

    Unique for up to 144 pages; page 1 is about "zorblax".
    """
    return f"The {_marker_word(page)} frequency is {4700 + page * 11} hertz."


def make_manual_pdf(path: Path, n_pages: int) -> Path:
    """Write an ``n_pages`` technical manual with a unique marker on every page.

    Each page has the :data:`MANUAL_HEADER` line, a section title, filler
    paragraphs around :func:`manual_marker` for that page, and a
    :data:`MANUAL_FOOTER` line, in that order in the content stream.
    """
    path = _prepare(path)
    pdf = _new_fpdf()
    for page in range(1, n_pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 6, MANUAL_HEADER, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", style="B", size=13)
        title = f"Section {page}: {_marker_word(page).capitalize()} maintenance"
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        rotation = page % len(_FILLER)
        filler = " ".join(_FILLER[rotation:] + _FILLER[:rotation])
        pdf.multi_cell(0, 6, filler)
        pdf.ln(4)
        pdf.multi_cell(0, 6, f"{manual_marker(page)} {filler}")
        # The footer must end above the 15 mm break margin or it spills onto a new page.
        pdf.set_y(-25)
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 6, MANUAL_FOOTER.format(page=page, total=n_pages), align="C")
    path.write_bytes(bytes(pdf.output()))
    return path

"""Cleaning of extracted page text: normalised characters and words, no running headers.

:func:`agent.documents.pdf.extract_pages` cleans every page with :func:`clean_page_text`;
the loader then strips headers and footers from each batch with :func:`strip_repeated_lines`
and leaves out tables of contents and index pages (:func:`is_page_listing`).
Only the standard library is imported here, since the PDF parser process imports this module.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass

__all__ = ["PageText", "clean_page_text", "is_page_listing", "strip_repeated_lines"]


@dataclass(frozen=True)
class PageText:
    """Cleaned text of one page; ``number`` is 1-based, as cited to users."""

    number: int
    text: str
    images: bool = False
    """Set on a page without text that shows images (a scan, OCR would read it)."""


# A table rather than NFKC: NFKC would also turn "m²" into "m2" and "…" into "...".
_CHAR_MAP: dict[int, str] = {
    0xFB00: "ff",
    0xFB01: "fi",
    0xFB02: "fl",
    0xFB03: "ffi",
    0xFB04: "ffl",
    0xFB05: "st",
    0xFB06: "st",
    0x200B: "",  # zero-width space
    0xFEFF: "",  # byte order mark / zero-width no-break space
    0x2028: "\n",
    0x2029: "\n\n",
    0x0C: "\n\n",  # form feed
    0x0B: "\n",
    # PDFium writes a hyphen that ends a line as U+FFFE and drops the line break after it.
    0xFFFE: "-\n",
}
# C0/C1 controls other than tab and newline, and any whitespace but tab and newline.
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|[^\S\n\t]")
_LETTERS = r"[^\W\d_]"
_COMPOUND = re.compile(rf"({_LETTERS}+)[-\u2010]({_LETTERS}+)")
_LINE_END_HYPHEN = re.compile(rf"({_LETTERS}+)[-\u2010\u00ad][ \t]*\n[ \t]*({_LETTERS}+)")
_BLANKS = re.compile(r"[ \t]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _normalise_char(match: re.Match[str]) -> str:
    # Control characters (NUL, bell, ...) go; Unicode spaces (NBSP, thin space) become spaces.
    return "" if unicodedata.category(match.group()) == "Cc" else " "


def clean_page_text(raw: str) -> str:
    """Normalise extracted page text for indexing and quoting.

    Expands ligatures (ﬁ → fi), turns Unicode spaces into spaces, drops NULs and
    other control characters, joins words hyphenated across a line break
    (``exam-\\nple`` → ``example``; kept as ``well-known`` when the page also
    uses that compound mid-line, or when the next part is capitalised), keeps
    single line breaks, collapses blank lines to one paragraph break ``\\n\\n``,
    collapses runs of spaces and tabs, and strips.
    """
    text = raw.replace("\r\n", "\n").replace("\r", "\n").translate(_CHAR_MAP)
    text = _CONTROL_OR_SPACE.sub(_normalise_char, text)
    text = "\n".join(_BLANKS.sub(" ", line).strip() for line in text.split("\n"))

    compounds = {f"{a}-{b}".casefold() for a, b in _COMPOUND.findall(text)}

    def join(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        # A capital on either side ("Jean-\nPaul", "PDF-\nfiles") means the hyphen is real.
        real_hyphen = left[-1].isupper() or f"{left}-{right}".casefold() in compounds
        if right[0].islower() and not real_hyphen:
            return left + right
        return f"{left}-{right}"

    text = _LINE_END_HYPHEN.sub(join, text).replace("\u00ad", "")
    return _MANY_NEWLINES.sub("\n\n", text).strip()


_DIGITS = re.compile(r"\d+")
_MIN_PAGES_FOR_STRIPPING = 4
_MAX_EDGE_LINE_CHARS = 120


def _edge_key(line: str) -> str | None:
    if len(line) > _MAX_EDGE_LINE_CHARS:
        return None  # a long line is body text, not a running header
    return _BLANKS.sub(" ", _DIGITS.sub("", line)).strip().casefold()


def _edges(text: str) -> tuple[list[str], int, int]:
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return lines, filled[0], filled[-1]


def strip_repeated_lines(pages: list[PageText]) -> list[PageText]:
    """Remove running headers and footers from a batch of pages.

    A page's first or last line is removed when, with digits removed (page
    numbers), the same line is the first (or last) line of more than half of the
    pages that have text. Batches with fewer than four such pages are returned
    unchanged. Only one line is considered at each edge, which keeps this cheap
    and conservative.
    """
    texted = [page for page in pages if page.text.strip()]
    if len(texted) < _MIN_PAGES_FOR_STRIPPING:
        return list(pages)
    heads: Counter[str] = Counter()
    tails: Counter[str] = Counter()
    for page in texted:
        lines, top, bottom = _edges(page.text)
        head, tail = _edge_key(lines[top]), _edge_key(lines[bottom])
        if head is not None:
            heads[head] += 1
        if tail is not None:
            tails[tail] += 1
    half = len(texted) / 2
    repeated_heads = {key for key, count in heads.items() if count > half}
    repeated_tails = {key for key, count in tails.items() if count > half}
    if not repeated_heads and not repeated_tails:
        return list(pages)

    result: list[PageText] = []
    for page in pages:
        if not page.text.strip():
            result.append(page)
            continue
        lines, top, bottom = _edges(page.text)
        drop: set[int] = set()
        if _edge_key(lines[top]) in repeated_heads:
            drop.add(top)
        if _edge_key(lines[bottom]) in repeated_tails:
            drop.add(bottom)
        if not drop:
            result.append(page)
            continue
        kept = "\n".join(line for i, line in enumerate(lines) if i not in drop)
        result.append(PageText(number=page.number, text=_MANY_NEWLINES.sub("\n\n", kept).strip()))
    return result


# "2.5 Suppressing errors . . . . 14", "glp_add_cols, 23, 45": a title, then page numbers.
_DOT_LEADER = re.compile(r"(?:\.\s?){4,}\s*\d+$|\.{4,}")
_TITLE_THEN_PAGES = re.compile(r"[^\W\d_].*?[\s,.]\d{1,4}(?:\s*[,\u2013-]\s*\d{1,4})*$")
_MIN_LISTING_LINES = 8
_MAX_INDEX_LINE_CHARS = 50


def is_page_listing(text: str) -> bool:
    """Whether a page is a table of contents or an index: lines of titles with page numbers.

    Such pages hold every keyword of the manual and answer nothing, so they crowd real
    passages out of search results. A page counts when at least eight of its lines are there
    and either a quarter of them have dot leaders, or they are short (an index's entries) and
    four in five end in page numbers: prose full of figures, wrapped, has long lines that
    often end in a number too.
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) < _MIN_LISTING_LINES:
        return False
    leaders = sum(1 for line in lines if _DOT_LEADER.search(line))
    if leaders * 4 >= len(lines):
        return True
    if statistics.median(len(line) for line in lines) > _MAX_INDEX_LINE_CHARS:
        return False
    numbered = sum(1 for line in lines if _TITLE_THEN_PAGES.fullmatch(line))
    return numbered * 5 >= len(lines) * 4

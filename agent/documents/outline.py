"""Section headings from a PDF's outline (its bookmarks), so a passage knows where it stands.

A passage that explains "2.5 Suppressing errors" rarely repeats the words of its heading; the
outline that most manuals carry names it. :func:`read_headings` lists the outline's entries with
their pages (in the parser process: PDFium and the standard library only);
:class:`SectionTracker` follows a file's pages in order and says, at each point of a page's
text, which heading path is in force.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

__all__ = ["Heading", "SectionTracker", "read_headings"]

_log = logging.getLogger(__name__)

# Enough for the outline of any real manual; a hostile file cannot make the list huge.
_MAX_HEADINGS = 20_000
_MAX_TITLE_CHARS = 160
_MAX_DEPTH = 12
_PATH_LEVELS = 3
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Heading:
    """An outline entry: the 1-based page it points to, its depth (0 = top) and title."""

    page: int
    level: int
    title: str


def read_headings(document: pdfium.PdfDocument) -> tuple[Heading, ...]:
    """The outline's entries in document order; ``()`` when there is none or it is broken.

    A broken outline costs the file its section names, never the load. Entries below
    level 12 are left out (PDFium stops at a loop in the outline too).
    """
    headings: list[Heading] = []
    try:
        for entry in document.get_toc(max_depth=_MAX_DEPTH + 1):
            if len(headings) >= _MAX_HEADINGS:
                break
            destination = entry.get_dest()
            index = destination.get_index() if destination is not None else None
            title = _SPACES.sub(" ", str(entry.get_title() or "")).strip()[:_MAX_TITLE_CHARS]
            if index is not None and title:
                headings.append(Heading(page=index + 1, level=int(entry.level), title=title))
    except Exception as exc:  # outlines of damaged files raise anything PDFium can
        _log.info("outline unreadable, passages get no section names: %r", exc)
        return ()
    return tuple(headings)


class SectionTracker:
    """The heading path in force as a file's pages are read in order.

    A heading takes effect where its title appears in its page's text (case and spacing
    aside), or at the top of the page when extraction renders it differently.
    """

    def __init__(self, headings: Sequence[Heading]) -> None:
        self._by_page: dict[int, list[Heading]] = {}
        for heading in headings:
            self._by_page.setdefault(heading.page, []).append(heading)
        self._pages = sorted(self._by_page)
        self._next = 0  # index into _pages of the first page not yet applied
        self._path: list[str] = []

    def on_page(self, page: int, text: str) -> list[tuple[int, str]]:
        """Offsets in ``text`` where the section changes, with the section from there on.

        The first entry is at offset 0 and gives the section the page starts in.
        """
        while self._next < len(self._pages) and self._pages[self._next] < page:
            for heading in self._by_page[self._pages[self._next]]:
                self._enter(heading)
            self._next += 1
        changes = [(0, self.section)]
        if self._next < len(self._pages) and self._pages[self._next] == page:
            at = 0
            for heading in self._by_page[page]:
                found = _find_title(text, heading.title, at)
                at = found if found is not None else at
                self._enter(heading)
                if changes[-1][0] == at:
                    changes[-1] = (at, self.section)
                else:
                    changes.append((at, self.section))
            self._next += 1
        return changes

    @property
    def section(self) -> str:
        """The innermost headings in force, outermost first: ``Chapter > Section``."""
        return " > ".join(self._path[-_PATH_LEVELS:])

    def _enter(self, heading: Heading) -> None:
        del self._path[heading.level :]
        # A skipped level (an outline that jumps from depth 0 to 2) keeps what is above it.
        self._path.append(heading.title)


def _find_title(text: str, title: str, start: int) -> int | None:
    words = title.split()
    if not words:
        return None
    pattern = r"\s*".join(re.escape(word) for word in words)
    match = re.compile(pattern, re.IGNORECASE).search(text, start)
    return match.start() if match else None

"""The value types that documents and the mind both speak: passages, hits, scopes, citations.

They live here, apart from either system, so that neither imports the other for a data shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SearchMode = Literal["hybrid", "dense", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "keyword")


@dataclass(frozen=True)
class Passage:
    """A passage ready for the archive; ``id`` is chosen by the caller and stable."""

    id: int
    source_id: int
    file_id: int
    document: str
    page: int
    last_page: int
    chunk: int
    text: str


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: int
    source_id: int
    file_id: int
    document: str
    page: int
    last_page: int
    chunk: int
    text: str
    score: float


@dataclass(frozen=True)
class Scope:
    """What a search may read: these sources, minus these files (loading or being removed)."""

    source_ids: tuple[int, ...]
    excluded_file_ids: tuple[int, ...] = ()


def page_label(page: int, last_page: int) -> str:
    """``p.41``, ``p.41-42``, or nothing for text without pages (an agent's notes)."""
    if page <= 0:
        return ""
    return f"p.{page}" if last_page <= page else f"p.{page}-{last_page}"


@dataclass(frozen=True)
class Citation:
    """A passage an answer relied on, as adapters render it (``gri.pdf p.41``)."""

    handle: int
    document: str
    page: int
    last_page: int
    source: str
    origin: str | None = None
    """Where the document came from (an upload's link), for adapters that can link to it."""

    @property
    def pages(self) -> str:
        """``p.41``, ``p.41-42``, or nothing for the agent's own notes."""
        return page_label(self.page, self.last_page)

    @property
    def label(self) -> str:
        """``gri.pdf p.41``, ``gri.pdf p.41-42``, or just the name for the agent's own notes."""
        return f"{self.document} {self.pages}".rstrip()


def by_document(citations: Sequence[Citation]) -> list[tuple[str, list[Citation]]]:
    """Citations grouped by document in order of first use, each page range once.

    What every adapter's "Sources: gri.pdf p.41, p.43; faq.pdf p.2" line is made from.
    """
    groups: dict[str, list[Citation]] = {}
    for citation in citations:
        cited = groups.setdefault(citation.document, [])
        if citation.pages and all(c.pages != citation.pages for c in cited):
            cited.append(citation)
    return list(groups.items())

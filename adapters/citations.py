"""The ``Sources: gri.pdf p.41, p.43; faq.pdf p.2`` line every adapter shows under an answer."""

from __future__ import annotations

from collections.abc import Callable

from agent.core import Citation, by_document


def sources_line(
    citations: list[Citation],
    *,
    document: Callable[[str], str] = str,
    page: Callable[[Citation], str] = lambda c: c.pages,
) -> str | None:
    """Citations grouped by document, or None without any.

    ``document`` escapes a name for the platform's markup; ``page`` renders one cited page
    range (for instance as a link to the file it came from).
    """
    if not citations:
        return None
    parts = [
        f"{document(name)} {', '.join(page(c) for c in cited)}".rstrip()
        for name, cited in by_document(citations)
    ]
    return "Sources: " + "; ".join(parts)

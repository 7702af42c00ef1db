"""An agent's own notes (``archival_memory_insert``): a source of its own, attached to it.

A note is stored like any text (:meth:`Library.add_text`) in the source ``notes`` of the
scope ``agent:<conversation>``, which no workspace resolves names in, and that source is
attached to the agent: its archival search then covers the notes with the documents. Only
listings meant for people leave it out, since nobody attached it by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent.documents.links import Links
from agent.documents.registry import Source

if TYPE_CHECKING:  # the archive and the model: not for commands that read the state file only
    from agent.documents.library import Library

NOTES_SOURCE = "notes"
NOTES_DOCUMENT = "saved notes"


def notes_scope(agent_key: str) -> str:
    """The scope of an agent's notes source."""
    return f"agent:{agent_key}"


async def save_note(library: Library, agent_key: str, text: str) -> None:
    """Store a note where the agent's archival search finds it."""
    scope = notes_scope(agent_key)
    await library.add_text(scope, NOTES_SOURCE, text, document=NOTES_DOCUMENT, created_by=agent_key)
    await library.links.attach(agent_key, scope, NOTES_SOURCE, by=agent_key)


def documents_only(sources: Sequence[Source], agent_key: str) -> list[Source]:
    """The attached sources a person attached: the agent's own notes left out."""
    return [s for s in sources if s.scope != notes_scope(agent_key)]


async def archive_overview(links: Links, agent_key: str) -> tuple[int, list[str]]:
    """Passages an agent's archival search covers, and the names of its attached documents."""
    attached = await links.attached(agent_key)
    passages = sum(s.passages for s in attached if s.status == "ready")
    return passages, [s.name for s in documents_only(attached, agent_key)]

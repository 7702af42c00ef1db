"""The functions the agent calls: MemGPT's memory operations over our stores.

Each function's signature and docstring are its schema (see :mod:`agent.mind.tools`): the docstring
tells the model when to use it. Every function takes the turn's :class:`TurnContext` as ``ctx``
and returns the text the model reads back; a refused call raises an ``ArchivistError`` whose
message the model reads as a function error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from agent.documents.library import Library, SearchResult
from agent.errors import ArchivistError, PassageTooLong
from agent.mind.citations import CitationStore
from agent.mind.memory import AgentState, CoreMemory
from agent.mind.messages import RecallPage
from agent.mind.notes import save_note
from agent.mind.output import refusal
from agent.mind.pointing import readable
from agent.mind.recall import RecallStore
from agent.values import Citation

_MAX_PAGE = 1000
# Replies refused in one turn before it ends with an honest fallback instead.
MAX_REFUSALS = 2


class FunctionError(ArchivistError):
    """A function call the model made that cannot be carried out; the text is for the model."""


@dataclass
class TurnContext:
    """What the functions of one turn work on, and what they leave for the reply."""

    agent: AgentState
    core: CoreMemory
    recall: RecallStore
    library: Library
    citations: CitationStore
    page_size: int = 5
    previous_reply: str | None = None
    """What the agent last said to the people, before this turn."""
    question: str = ""
    """The message this turn answers."""
    memory_warned: bool = False
    """Whether this turn's prompts carry the memory-pressure warning."""
    messages: list[str] = field(default_factory=list)
    refused: int = 0
    """Replies this turn that could not be shown (markup, JSON, a repeat)."""
    unseen: list[int] = field(default_factory=list)
    """Messages that leave the prompt when the turn ends: replies nobody saw, the notes that
    told the model why, and the "could not put an answer into words" apology, which a small
    model otherwise copies."""
    # Archive results shown this turn, by the handle the model cites them with, and their text.
    handles: dict[int, Citation] = field(default_factory=dict)
    shown: dict[int, str] = field(default_factory=dict)

    async def cite(self, results: Sequence[SearchResult]) -> list[Citation]:
        """The results under their conversation-wide handles (see :mod:`citations`)."""
        cited = await self.citations.handles(self.agent.id, results)
        self.handles.update((c.handle, c) for c in cited)
        self.shown.update((c.handle, r.text) for c, r in zip(cited, results, strict=True))
        return cited


async def send_message(ctx: TurnContext, message: str) -> str:
    """Send a message to the people in this conversation; this is the only way they hear you.

    Args:
        message: The message. Cite facts from archival memory by their handles, e.g. [2].
    """
    if not message.strip():
        raise FunctionError("send_message failed: the message is empty.")
    message = readable(message, ctx.shown, ctx.question)
    reason = refusal(message, ctx.previous_reply)
    if reason is not None:
        ctx.refused += 1
        raise FunctionError(f"send_message failed: {reason}.")
    ctx.messages.append(message)
    return "Sent."


async def core_memory_append(
    ctx: TurnContext, label: Literal["persona", "human"], content: str
) -> str:
    """Add a line to a core memory block (always in view), e.g. a fact about a person.

    Args:
        label: The block: "persona" (who you are) or "human" (notes on the people you talk with,
            each fact labelled with the person's name).
        content: The text to add.
    """
    await ctx.core.append(label, content)
    return f"Appended to {label}."


async def core_memory_replace(
    ctx: TurnContext, label: Literal["persona", "human"], old_content: str, new_content: str
) -> str:
    """Replace text in a core memory block; an empty new_content deletes old_content.

    Args:
        label: The block: "persona" or "human".
        old_content: The exact text to replace; it must occur once in the block.
        new_content: The text to put in its place.
    """
    await ctx.core.replace(label, old_content, new_content)
    return f"Replaced in {label}."


def _recall_page(found: RecallPage, what: str) -> str:
    if not found.total:
        return f"No messages {what}."
    lines = [
        f"Showing {len(found.results)} of {found.total} messages {what}"
        f" (page {found.page} of {found.pages}, pages count from 0):"
    ]
    for message in found.results:
        who = message.speaker_name or message.role
        lines.append(f"- {message.created_at:%Y-%m-%d %H:%M} {who}: {message.content}")
    return "\n".join(lines)


def _check_page(function: str, page: int) -> None:
    if not 0 <= page <= _MAX_PAGE:
        raise FunctionError(f"{function} failed: page must be between 0 and {_MAX_PAGE}.")


async def conversation_search(ctx: TurnContext, query: str, page: int = 0) -> str:
    """Search the whole conversation history (recall memory) for words.

    Args:
        query: Words to look for.
        page: Page of results, from 0.
    """
    _check_page("conversation_search", page)
    found = await ctx.recall.search(ctx.agent.id, query, page=page, page_size=ctx.page_size)
    return _recall_page(found, f"matching {query!r}")


async def conversation_search_date(
    ctx: TurnContext, start_date: str, end_date: str, page: int = 0
) -> str:
    """Search the conversation history (recall memory) by date.

    Args:
        start_date: First day, as YYYY-MM-DD.
        end_date: Last day, as YYYY-MM-DD (inclusive).
        page: Page of results, from 0.
    """
    _check_page("conversation_search_date", page)
    try:
        start, end = date.fromisoformat(start_date), date.fromisoformat(end_date)
    except ValueError:
        raise FunctionError(
            "conversation_search_date failed: dates must look like 2024-05-31."
        ) from None
    found = await ctx.recall.search_date(
        ctx.agent.id, start, end, page=page, page_size=ctx.page_size
    )
    return _recall_page(found, f"from {start} to {end}")


async def archival_memory_insert(ctx: TurnContext, content: str) -> str:
    """Save a note to archival memory for later searches (not always in view, unlike core memory).

    Args:
        content: The note; write it so that it makes sense on its own later.
    """
    try:
        await save_note(ctx.library, ctx.agent.key, content)
    except PassageTooLong as exc:
        raise FunctionError(f"archival_memory_insert failed: {exc}") from None
    return "Saved to archival memory."


async def archival_memory_search(ctx: TurnContext, query: str, page: int = 0) -> str:
    """Search archival memory: the attached documents and your saved notes.

    Args:
        query: What to look for; a question or keywords both work.
        page: Page of results, from 0; read further pages when the first does not answer.
    """
    found = await ctx.library.search_attached(ctx.agent.key, query, top_k=ctx.page_size, page=page)
    if not found.total:
        return "Archival memory is empty: no documents are attached to this conversation."
    if not found.results:
        return f"No results on page {page}; there are {found.pages} pages (from 0)."
    lines = [
        f"Showing {len(found.results)} of {found.total} passages"
        f" (page {page} of {found.pages}, pages count from 0). Cite by handle:"
    ]
    cited = await ctx.cite(found.results)
    for result, citation in zip(found.results, cited, strict=True):
        lines.append(f"[{citation.handle}] {citation.label}: {' '.join(result.text.split())}")
    return "\n".join(lines)


Function = Callable[..., Awaitable[str]]

FUNCTIONS: dict[str, Function] = {
    fn.__name__: fn
    for fn in (
        send_message,
        core_memory_append,
        core_memory_replace,
        conversation_search,
        conversation_search_date,
        archival_memory_insert,
        archival_memory_search,
    )
}

"""An answer as one text in a platform's markup: thoughts if shown, messages, sources, notice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.core import Citation, Reply


@dataclass(frozen=True)
class ReplyMarkup:
    """How one platform writes each part of an answer."""

    thought: Callable[[str], str]
    message: Callable[[str], str]
    sources: Callable[[list[Citation]], str | None]
    failure: Callable[[str], str]
    """A notice saying the turn failed (the model down, say)."""
    label: Callable[[str], str]
    """A notice that only labels the answer (search results without a model)."""


def reply_text(reply: Reply, markup: ReplyMarkup, *, show_thoughts: bool) -> str:
    """The parts of ``reply`` in ``markup``, blank ones left out, a blank line between."""
    parts = [markup.thought(t) for t in reply.thoughts] if show_thoughts else []
    parts.extend(markup.message(m) for m in reply.messages)
    parts.append(markup.sources(reply.citations) or "")
    if reply.notice:
        parts.append((markup.failure if reply.failed else markup.label)(reply.notice))
    return "\n\n".join(part for part in parts if part.strip())

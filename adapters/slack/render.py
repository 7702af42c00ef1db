"""Replies as Slack messages: mrkdwn, citation links, and the 3,000-character block limit."""

from __future__ import annotations

from typing import Any

from adapters.citations import sources_line
from adapters.text import split_text
from agent.core import Citation, Reply

SECTION_LIMIT = 3000


def escape(text: str) -> str:
    """Text with Slack's three control characters escaped (no accidental links or pings)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def citation_line(citations: list[Citation]) -> str | None:
    """``Sources: gri.pdf p.41, p.43``; a page links to the shared file, if known."""
    return sources_line(
        citations,
        document=escape,
        page=lambda c: f"<{c.origin}|{c.pages}>" if c.origin else c.pages,
    )


def reply_text(reply: Reply, *, show_thoughts: bool = False) -> str:
    """The whole answer as mrkdwn: thoughts if shown, messages, sources, notice."""
    parts: list[str] = []
    if show_thoughts:
        parts.extend(f"_{escape(thought)}_" for thought in reply.thoughts)
    parts.extend(escape(message) for message in reply.messages)
    line = citation_line(reply.citations)
    if line:
        parts.append(line)
    if reply.notice:
        parts.append(
            f":warning: {escape(reply.notice)}" if reply.failed else f"_{escape(reply.notice)}_"
        )
    return "\n\n".join(part for part in parts if part.strip())


def message_blocks(text: str) -> list[list[dict[str, Any]]]:
    """Messages of section blocks, each section within Slack's 3,000-character limit."""
    pieces = split_text(text, SECTION_LIMIT)
    # Slack allows 50 blocks per message; an answer that long is split over messages.
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in pieces]
    return [sections[i : i + 50] for i in range(0, len(sections), 50)]

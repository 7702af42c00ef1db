"""Replies as Slack messages: mrkdwn, citation links, and the 3,000-character block limit."""

from __future__ import annotations

from typing import Any

from adapters import replies
from adapters.citations import sources_line
from adapters.replies import ReplyMarkup
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


MARKUP = ReplyMarkup(
    thought=lambda text: f"_{escape(text)}_",
    message=escape,
    sources=citation_line,
    failure=lambda notice: f":warning: {escape(notice)}",
    label=lambda notice: f"_{escape(notice)}_",
)


def reply_text(reply: Reply, *, show_thoughts: bool = False) -> str:
    """The whole answer as mrkdwn."""
    return replies.reply_text(reply, MARKUP, show_thoughts=show_thoughts)


def message_blocks(text: str) -> list[list[dict[str, Any]]]:
    """Messages of section blocks, each section within Slack's 3,000-character limit."""
    pieces = split_text(text, SECTION_LIMIT)
    # Slack allows 50 blocks per message; an answer that long is split over messages.
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in pieces]
    return [sections[i : i + 50] for i in range(0, len(sections), 50)]

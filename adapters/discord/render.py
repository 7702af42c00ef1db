"""Replies as Discord messages: the 2,000-character limit, code fences, citation links."""

from __future__ import annotations

import re

from adapters import replies
from adapters.citations import sources_line
from adapters.replies import ReplyMarkup
from adapters.text import split_text
from agent.core import Citation, Reply

MESSAGE_LIMIT = 2000


def citation_line(citations: list[Citation]) -> str | None:
    """``Sources: gri.pdf p.41, p.43``; a page links to the upload it came from, if known.

    Links are wrapped in ``<>`` so Discord shows no preview card for each of them.
    """
    return sources_line(
        citations,
        document=_plain,
        page=lambda c: f"[{c.pages}](<{c.origin}>)" if c.origin else c.pages,
    )


MARKUP = ReplyMarkup(
    thought=lambda text: f"-# {_plain(text)}",
    message=str,
    sources=citation_line,
    failure=lambda notice: f"⚠️ {notice}",
    label=lambda notice: f"-# {notice}",
)


def reply_text(reply: Reply, *, show_thoughts: bool = False) -> str:
    """The whole answer as one Markdown text."""
    return replies.reply_text(reply, MARKUP, show_thoughts=show_thoughts)


def _plain(text: str) -> str:
    """Text with Discord's Markdown characters escaped (document names, thoughts)."""
    return re.sub(r"([\\*_`~|>\[\]])", r"\\\1", text)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Discord messages of at most ``limit`` characters (see :func:`split_text`)."""
    return split_text(text, limit)

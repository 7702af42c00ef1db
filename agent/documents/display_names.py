"""How a user's file name is shown in the one-line messages that quote it."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["safe_display_name"]

_MAX_NAME_CHARS = 100
_FALLBACK_NAME = "unnamed.pdf"

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_SPACE_RUN = re.compile(r"\s+")


def safe_display_name(name: str) -> str:
    """Return ``name`` made safe to quote in a one-line user message.

    Bytes of a name that is not UTF-8 become U+FFFD. Control characters and
    bidirectional overrides (which can disguise an
    extension) are dropped, whitespace of any kind (newlines, tabs) is collapsed
    to single spaces, only the last path component is kept (``/`` or ``\\``), ASCII
    single quotes become a typographic apostrophe (U+2019) so the quotes around
    the name in messages stay unambiguous, and names over 100 characters are
    shortened in the middle with ``…`` keeping a short extension. An empty
    result becomes ``unnamed.pdf``.
    """
    chars: list[str] = []
    for char in name:
        if char in _BIDI_CONTROLS:
            continue
        if char.isspace():
            chars.append(" ")  # newlines and tabs separate words; keep them apart
        elif unicodedata.category(char) == "Cs":
            # A byte of a file name that is not UTF-8 (Python's surrogate escape): it cannot
            # be stored or printed, so it is shown as the replacement character.
            chars.append("\ufffd")
        elif unicodedata.category(char) != "Cc":
            chars.append(char)
    cleaned = "".join(chars).replace("\\", "/")
    parts = [part for part in cleaned.split("/") if part.strip()]
    base = _SPACE_RUN.sub(" ", parts[-1]).strip() if parts else ""
    base = base.replace("'", "\u2019")
    if not base:
        return _FALLBACK_NAME
    if len(base) <= _MAX_NAME_CHARS:
        return base
    stem, dot, suffix = base.rpartition(".")
    # Keep ".pdf" visible: it is the part a user recognises after a long name.
    tail = f"{dot}{suffix}" if stem and 0 < len(suffix) <= 10 else ""
    head = base[: len(base) - len(tail)] if tail else base
    return head[: _MAX_NAME_CHARS - 1 - len(tail)].rstrip() + "\u2026" + tail

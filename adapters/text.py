"""Long answers cut into pieces a chat platform accepts, without breaking code blocks."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(`{3,})(\S*)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at paragraph, line or sentence ends.

    A code block cut in two is closed at the end of one piece and reopened, with its
    language, at the start of the next, so both render as code.
    """
    pieces: list[str] = []
    current = ""
    fence: str | None = None  # the opening line of the code block `current` ends inside
    for line in _lines(text, limit - 8):
        reopen = fence
        match = _FENCE.match(line)
        if match:
            fence = None if fence else f"{match.group(1)}{match.group(2)}"
        closing = f"\n{_ticks(reopen)}" if reopen else ""
        candidate = f"{current}\n{line}" if current else line
        if current and len(candidate) + len(closing) > limit:
            pieces.append(current + closing)
            current = f"{reopen}\n{line}" if reopen else line
        else:
            current = candidate
    if current.strip():
        pieces.append(current)
    return [piece.strip("\n") for piece in pieces if piece.strip()]


def _ticks(fence_line: str) -> str:
    match = _FENCE.match(fence_line)
    return match.group(1) if match else "```"


def _lines(text: str, width: int) -> list[str]:
    """The text's lines, those longer than ``width`` cut at sentence ends, else spaces."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = _cut(line, width)
            out.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        out.append(line)
    return out


def _cut(line: str, width: int) -> int:
    ends = [m.end() for m in _SENTENCE_END.finditer(line, 0, width + 1) if m.end() <= width]
    if ends and ends[-1] > width // 2:
        return ends[-1]
    space = line.rfind(" ", width // 2, width)
    return space + 1 if space > 0 else width

"""Cut page text into passages that the embedding model reads whole.

Passages are measured in the embedding model's own word pieces, so none is silently
truncated. They end on sentence or paragraph boundaries where possible and carry a small
overlap of whole sentences from the previous passage. A page break ends a passage, so
citations stay accurate, unless the passage is still short: then it runs on into the next page
rather than leaving a tiny fragment, and records both its first and last page.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

TokenSpans = Callable[[str], list[tuple[int, int]]]

# A sentence ends at ., !, ? or : followed by whitespace; paragraphs at a blank line.
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+")
_HAS_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Chunk:
    """A passage of text, the page its new text starts on and the page it ends on."""

    page: int
    last_page: int
    text: str
    tokens: int


@dataclass
class _Unit:
    page: int
    text: str
    tokens: int
    paragraph_start: bool


@dataclass
class Chunker:
    """Stateful splitter: feed pages in order, then call :meth:`finish` once.

    ``max_tokens`` is the number of word pieces of text the model reads per passage (special
    tokens excluded); ``overlap_tokens`` is how much trailing context a passage repeats.
    """

    token_spans: TokenSpans
    max_tokens: int
    overlap_tokens: int = 32
    _current: list[_Unit] = field(default_factory=list)
    _current_tokens: int = 0
    _fresh_from: int = 0
    # Each passage is held back one step so that a tiny final tail can join it.
    _pending: Chunk | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError("max_tokens is too small to make passages")
        self.overlap_tokens = min(self.overlap_tokens, self.max_tokens // 4)

    def feed(self, page: int, text: str) -> list[Chunk]:
        """Add one page's text; returns the passages completed so far."""
        done: list[Chunk] = []
        fresh_tokens = sum(u.tokens for u in self._current[self._fresh_from :])
        if fresh_tokens >= self.max_tokens // 4:
            done.extend(self._break(0))
        for unit in self._units(page, text):
            done.extend(self._add(unit))
        return done

    def finish(self) -> list[Chunk]:
        """Flush the last passages; a tail too small to stand alone joins the one before."""
        fresh = self._current[self._fresh_from :]
        fresh_tokens = sum(u.tokens for u in fresh)
        pending, self._pending = self._pending, None
        if (
            pending is not None
            and fresh
            and fresh_tokens < self.max_tokens // 8
            and pending.tokens + fresh_tokens <= self.max_tokens
        ):
            self._current, self._current_tokens, self._fresh_from = [], 0, 0
            tail = _join(fresh)
            sep = "\n\n" if fresh[0].paragraph_start else " "
            return [
                Chunk(
                    page=pending.page,
                    last_page=fresh[-1].page,
                    text=pending.text + sep + tail,
                    tokens=pending.tokens + fresh_tokens,
                )
            ]
        last = self._emit()
        return [c for c in (pending, last) if c is not None]

    def _units(self, page: int, text: str) -> Iterable[_Unit]:
        spans = self.token_spans(text)
        starts = [s for s, _ in spans]
        ends = [e for _, e in spans]
        for p_start, p_end in _ranges(text, _PARAGRAPH, 0, len(text)):
            first = True
            for s_start, s_end in _ranges(text, _SENTENCE_END, p_start, p_end):
                lo = bisect_left(starts, s_start)
                hi = bisect_right(ends, s_end)
                sentence = text[s_start:s_end].strip()
                if not _HAS_WORD.search(sentence):
                    continue
                if hi - lo <= self.max_tokens:
                    yield _Unit(page, sentence, max(hi - lo, 1), first)
                else:
                    # A "sentence" longer than a passage (tables, code): cut between words.
                    i = lo
                    while i < hi:
                        j = _word_cut(text, spans, i, min(i + self.max_tokens, hi))
                        piece = text[spans[i][0] : spans[j - 1][1]].strip()
                        yield _Unit(page, piece, j - i, first and i == lo)
                        i = j
                first = False

    def _add(self, unit: _Unit) -> list[Chunk]:
        done = (
            []
            if self._current_tokens + unit.tokens <= self.max_tokens
            else self._break(unit.tokens)
        )
        self._append(unit)
        return done

    def _break(self, incoming: int) -> list[Chunk]:
        """End the current passage, keeping an overlap that leaves room for ``incoming``."""
        overlap = self._overlap(incoming)
        chunk = self._emit()
        self._current, self._current_tokens, self._fresh_from = (
            overlap,
            sum(u.tokens for u in overlap),
            len(overlap),
        )
        if chunk is None:
            return []
        done, self._pending = self._pending, chunk
        return [done] if done else []

    def _append(self, unit: _Unit) -> None:
        self._current.append(unit)
        self._current_tokens += unit.tokens

    def _overlap(self, incoming: int) -> list[_Unit]:
        """Trailing whole sentences of the passage just emitted, within the overlap budget."""
        budget = min(self.overlap_tokens, self.max_tokens - incoming)
        kept: list[_Unit] = []
        total = 0
        for unit in reversed(self._current):
            if total + unit.tokens > budget:
                break
            kept.insert(0, unit)
            total += unit.tokens
        return kept

    def _emit(self) -> Chunk | None:
        fresh = self._current[self._fresh_from :]
        if not fresh:
            self._current, self._current_tokens, self._fresh_from = [], 0, 0
            return None
        chunk = Chunk(
            page=fresh[0].page,
            last_page=fresh[-1].page,
            text=_join(self._current),
            tokens=self._current_tokens,
        )
        self._current, self._current_tokens, self._fresh_from = [], 0, 0
        return chunk


def _word_cut(text: str, spans: list[tuple[int, int]], start: int, limit: int) -> int:
    """The last span index in (start, limit] that begins a new word, else ``limit``.

    Cutting inside a word would turn a ``##`` continuation piece into a word start, which
    tokenizes differently and could overrun the budget.
    """
    if limit >= len(spans):
        return limit
    for j in range(limit, start, -1):
        at = spans[j][0]
        if at == 0 or not (text[at - 1].isalnum() and text[at].isalnum()):
            return j
    return limit


def _join(units: list[_Unit]) -> str:
    """Units as text: paragraphs apart by a blank line, sentences by a space."""
    parts: list[str] = []
    for index, unit in enumerate(units):
        if index:
            parts.append("\n\n" if unit.paragraph_start else " ")
        parts.append(unit.text)
    return "".join(parts)


def _ranges(
    text: str, separator: re.Pattern[str], start: int, end: int
) -> Iterable[tuple[int, int]]:
    """Character ranges of ``text[start:end]`` between matches of ``separator``."""
    position = start
    for match in separator.finditer(text, start, end):
        if match.start() > position:
            yield position, match.start()
        position = match.end()
    if end > position:
        yield position, end

"""Cut page text into passages that the embedding model reads whole.

Passages are measured in the embedding model's own word pieces, so none is silently
truncated. They end on sentence or paragraph boundaries where possible and carry a small
overlap of whole sentences from the previous passage of the same page. A page break ends a
passage, so citations stay accurate, unless the passage is still short: then it runs on into
the next page rather than leaving a tiny fragment, and records both its first and last page.

Given the file's outline, each passage begins with the heading path its new text stands under
(``§ 2 Using Memcheck > 2.5 Suppressing errors``): the words a question shares with the heading
but not with the body then count for ranking, and a reader of the passage sees where it is.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agent.documents.outline import SectionTracker
from agent.documents.page_text import PageText, is_page_listing, strip_repeated_lines

TokenSpans = Callable[[str], list[tuple[int, int]]]

# A sentence ends at ., !, ? or : followed by whitespace; paragraphs at a blank line.
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+")
_HAS_WORD = re.compile(r"\w")
SECTION_MARK = "§ "
# Word pieces kept for the heading line; a longer path is cut, the body keeps the rest.
SECTION_TOKENS = 24


@dataclass(frozen=True)
class Chunk:
    """A passage of text, the page it starts on and the page it ends on."""

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
    section: str = ""


@dataclass
class Chunker:
    """Stateful splitter: feed pages in order, then call :meth:`finish` once.

    ``max_tokens`` is the number of word pieces of text the model reads per passage (special
    tokens excluded, the heading line included); ``overlap_tokens`` is how much trailing
    context a passage repeats; ``sections`` follows the file's outline, if it has one.
    """

    token_spans: TokenSpans
    max_tokens: int
    overlap_tokens: int = 32
    sections: SectionTracker | None = None
    _current: list[_Unit] = field(default_factory=list)
    _current_tokens: int = 0
    _fresh_from: int = 0
    # Each passage is held back one step so that a tiny final tail can join it.
    _pending: Chunk | None = None
    _body: int = 0  # word pieces of body text per passage

    def __post_init__(self) -> None:
        reserved = SECTION_TOKENS if self.sections is not None else 0
        if self.max_tokens - reserved < 8:
            raise ValueError("max_tokens is too small to make passages")
        self._body = self.max_tokens - reserved
        self.overlap_tokens = min(self.overlap_tokens, self._body // 4)

    def feed(self, page: int, text: str) -> list[Chunk]:
        """Add one page's text; returns the passages completed so far."""
        done: list[Chunk] = []
        fresh_tokens = sum(u.tokens for u in self._current[self._fresh_from :])
        if fresh_tokens >= self._body // 4:
            # No overlap across the break: a passage then holds text of its own pages only,
            # so the pages it cites are where every sentence of it is.
            done.extend(self._break(0, overlap=False))
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
            and fresh_tokens < self._body // 8
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
        changes = self.sections.on_page(page, text) if self.sections else [(0, "")]
        offsets = [offset for offset, _ in changes]
        for p_start, p_end in _ranges(text, _PARAGRAPH, 0, len(text)):
            first = True
            for s_start, s_end in _ranges(text, _SENTENCE_END, p_start, p_end):
                lo = bisect_left(starts, s_start)
                hi = bisect_right(ends, s_end)
                sentence = text[s_start:s_end].strip()
                if not _HAS_WORD.search(sentence):
                    continue
                # A heading found mid-sentence (extraction ran it into the text) counts too.
                section = changes[bisect_right(offsets, s_end - 1) - 1][1]
                if hi - lo <= self._body:
                    yield _Unit(page, sentence, max(hi - lo, 1), first, section)
                else:
                    # A "sentence" longer than a passage (tables, code): cut between words.
                    i = lo
                    while i < hi:
                        j = _word_cut(text, spans, i, min(i + self._body, hi))
                        piece = text[spans[i][0] : spans[j - 1][1]].strip()
                        yield _Unit(page, piece, j - i, first and i == lo, section)
                        i = j
                first = False

    def _add(self, unit: _Unit) -> list[Chunk]:
        done = [] if self._current_tokens + unit.tokens <= self._body else self._break(unit.tokens)
        self._append(unit)
        return done

    def _break(self, incoming: int, *, overlap: bool = True) -> list[Chunk]:
        """End the current passage, keeping an overlap that leaves room for ``incoming``."""
        kept = self._overlap(incoming) if overlap else []
        chunk = self._emit()
        self._current, self._current_tokens, self._fresh_from = (
            kept,
            sum(u.tokens for u in kept),
            len(kept),
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
        budget = min(self.overlap_tokens, self._body - incoming)
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
        heading, heading_tokens = self._heading(fresh[0].section)
        chunk = Chunk(
            # The overlap's page too: when a short passage ran on, its overlap may be earlier.
            page=self._current[0].page,
            last_page=fresh[-1].page,
            text=heading + _join(self._current),
            tokens=heading_tokens + self._current_tokens,
        )
        self._current, self._current_tokens, self._fresh_from = [], 0, 0
        return chunk

    def _heading(self, section: str) -> tuple[str, int]:
        """The heading line a passage starts with, cut to fit its budget, and its word pieces."""
        if not section:
            return "", 0
        line = SECTION_MARK + section
        spans = self.token_spans(line)
        if len(spans) > SECTION_TOKENS:
            cut = _word_cut(line, spans, 0, SECTION_TOKENS)
            spans = spans[:cut]
            line = line[: spans[-1][1]]
        return line + "\n\n", len(spans)


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


def chunk_pages(chunker: Chunker, pages: list[PageText], last: bool) -> list[Chunk]:
    """Feed a range of pages to the chunker, without running headers, footers and listings."""
    chunks: list[Chunk] = []
    for page in strip_repeated_lines(pages):
        if not is_page_listing(page.text):
            chunks.extend(chunker.feed(page.number, page.text))
    if last:
        chunks.extend(chunker.finish())
    return chunks

"""Sources for a reply that cites none: the passages shown this turn that it draws on.

Small local models answer from the search results they were shown but rarely write the
handles (``[2]``) that tie a sentence to its passage, and a reply without a source cannot be
checked. So when a reply cites nothing, the passages of this turn whose distinctive words it
repeats (names, numbers, terms) are cited for it: a "Sources:" line, never handles put into
the model's words. A reply that repeats too little of any passage gets no source rather than
a wrong one. :func:`cited` gives a turn's messages their citations, either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.mind.citations import cited_handles, without_unknown
from agent.values import Citation

if TYPE_CHECKING:
    from agent.mind.functions import TurnContext

__all__ = ["cited", "distinctive_words", "drawn_from"]

# Words of four letters or more, and numbers: what a reply repeats when it uses a passage.
_WORD = re.compile(r"[^\W_]{4,}|\d[\d.,]*\d|\d")
_COMMON_WORDS = """about above after again also because been before being below between both
could does doing down during each from further have having here into just more most only other
over same should some such than that their them then there these they this those through under
until very were what when where which while will with would your yours page manual document
documents sources source answer question says said"""
_COMMON = frozenset(_COMMON_WORDS.split())
# A reply must repeat this many of a passage's words, and this share of its own, to draw on it.
_MIN_SHARED = 3
_MIN_SHARE = 0.3
_MAX_SOURCES = 2


def distinctive_words(text: str) -> set[str]:
    """The words of ``text`` that tie it to a passage: names, numbers, terms (casefolded)."""
    return {w for w in (m.casefold() for m in _WORD.findall(text)) if w not in _COMMON}


def drawn_from(reply: str, shown: Mapping[int, str]) -> list[int]:
    """The handles of the passages in ``shown`` (handle → text) that ``reply`` draws on, best
    first, at most two; none if it repeats too little of any."""
    said = distinctive_words(reply)
    if len(said) < _MIN_SHARED:
        return []
    scored = []
    for handle, text in shown.items():
        shared = len(said & distinctive_words(text))
        if shared >= _MIN_SHARED and shared >= _MIN_SHARE * len(said):
            scored.append((shared, -handle))
    return [-handle for _, handle in sorted(scored, reverse=True)[:_MAX_SOURCES]]


async def cited(ctx: TurnContext) -> tuple[list[str], list[Citation]]:
    """The messages with only backed citations left in, and those citations in order of use.

    A handle may come from an earlier turn (its result is still in view); one that no search
    ever returned is the model's invention and is taken out.
    """
    used = cited_handles(ctx.messages)
    known = {h: ctx.handles[h] for h in used if h in ctx.handles}
    missing = [h for h in used if h not in known]
    if missing:
        known.update(await ctx.citations.resolve(ctx.agent.id, missing))
    messages = [without_unknown(m, known) for m in ctx.messages]
    if not known and messages:
        # Nothing cited (small models rarely write handles): the passages it repeats are.
        return messages, [ctx.handles[h] for h in drawn_from("\n".join(messages), ctx.shown)]
    return messages, [known[h] for h in used if h in known]

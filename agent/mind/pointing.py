"""A reply that only points at a passage ("[2]"), made into one a person can read.

With a question's passages in view, a small model often answers with the handle of the
passage that holds the answer and nothing else: Qwen2.5-Coder-1.5B did so for 9 of 19
document questions in a plain question-and-passages probe, 7 times naming the passage of the
right page (docs/benchmarks.md, "The same model without the agent"). "[2]" tells a person
nothing, and refusing it throws away the model's choice. So the passage speaks for itself: the
run of its sentences that shares most words with the question, quoted, with the handle, so the
reply cites its document and page like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agent.mind.attribution import distinctive_words

__all__ = ["closest_passage", "excerpt", "only_handles", "readable"]

_ONLY_HANDLES = re.compile(r"^[\s(.,;:]*(?:\[(\d{1,6})\][\s).,;:]*)+$")
_HANDLE = re.compile(r"\[(\d{1,6})\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`])")
_EXCERPT_CHARS = 320
_MAX_PASSAGES = 2
_MIN_SHARED_TERMS = 2


def only_handles(text: str) -> list[int] | None:
    """The handles ``text`` consists of ("[2]", "[1] [3]."), or None if it says anything."""
    if not _ONLY_HANDLES.match(text):
        return None
    return list(dict.fromkeys(int(h) for h in _HANDLE.findall(text)))


def readable(text: str, shown: Mapping[int, str], question: str) -> str:
    """``text``, or, if it only names passages shown this turn, those passages quoted."""
    handles = only_handles(text)
    if handles is None:
        return text
    return _quoted(handles, shown, question) or text


def closest_passage(shown: Mapping[int, str], question: str) -> str | None:
    """The best-ranked passage shown this turn that shares two terms with ``question``, quoted
    and cited; None if none does. One is not enough: "what is my name?" shares "name" with
    many a passage (bench/real_model.py, 31553f4), and small talk shares nothing."""
    asked = distinctive_words(question)
    for handle, text in shown.items():  # in the order the searches ranked them
        if len(asked & distinctive_words(text)) >= _MIN_SHARED_TERMS:
            return _quote(handle, text, question)
    return None


def _quoted(handles: list[int], shown: Mapping[int, str], question: str) -> str | None:
    """The passages behind ``handles`` that were shown this turn, each as the excerpt that
    answers ``question`` best, quoted and cited; None if none of them was shown."""
    parts = [_quote(h, shown[h], question) for h in handles if h in shown]
    if not parts:
        return None
    return "From the documents:\n" + "\n".join(parts[:_MAX_PASSAGES])


def _quote(handle: int, passage: str, question: str) -> str:
    return f"“{excerpt(passage, question)}” [{handle}]"


def excerpt(passage: str, question: str) -> str:
    """The sentences of ``passage`` from the one sharing most words with ``question`` (the
    first, on a tie), up to about 320 characters; a longer first sentence is cut at a word."""
    sentences = _SENTENCE.split(" ".join(passage.split()))
    asked = distinctive_words(question)
    scores = [len(asked & distinctive_words(s)) for s in sentences]
    start = scores.index(max(scores))
    kept = sentences[start]
    for sentence in sentences[start + 1 :]:
        if len(kept) + 1 + len(sentence) > _EXCERPT_CHARS:
            break
        kept += " " + sentence
    if len(kept) > _EXCERPT_CHARS + 80:
        kept = kept[:_EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"
    return kept

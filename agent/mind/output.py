"""What the model wrote, made fit for people.

Open models often write their function calls as text instead of making them (the server
passes them on as plain text): those become calls like any other. Text that is neither a call
nor clean sentences (markup, JSON, empty tool wrappers), or that repeats the previous reply,
never reaches a person: the model hears why, once. A reply cut off at the token limit ends at
its last full sentence, marked as cut.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import replace
from typing import Final

from agent.mind.llm import Completion
from agent.mind.pointing import only_handles
from agent.mind.text_calls import is_clean_reply, parse_text_calls

NOT_SHOWN: Final = (
    "[not shown] Your last reply was not shown to anyone: {reason}. Answer the newest message"
    " with send_message, in plain sentences."
)
NO_ANSWER: Final = (
    "I could not put an answer into words this time: please ask again, perhaps in other words."
)
NO_ANSWER_BUT: Final = (
    "I could not put an answer into words this time. The passage that matches your question best:"
)
CUT_MARK: Final = " …"
_SENTENCE_END = re.compile(r"[.!?…](?=[\s)\]\"']|$)")
_SAME_REPLY = 0.9
# "Thanks!" or "I see." may well be said twice; a sentence of substance may not.
_REPEATABLE_CHARS = 24
# The labels of the prompt's own notes (instructions.py): a reply holding one says them back.
PROMPT_MARKERS: Final = ("[memory]", "[memory pressure]", "[not shown]")


def with_text_calls(completion: Completion, known: Collection[str]) -> Completion:
    """``completion`` with the calls its text holds made real, if it made none itself."""
    if completion.tool_calls or not completion.content:
        return completion
    found = parse_text_calls(completion.content, known)
    if not found.calls:
        return completion
    return replace(completion, content=found.rest or None, tool_calls=found.calls)


def refusal(text: str, previous: str | None) -> str | None:
    """Why ``text`` must not be shown to a person, in words for the model; None if it may."""
    if only_handles(text) is not None:
        return "it only names a passage; say in sentences what it says"
    if not is_clean_reply(text):
        return "it holds markup or JSON, not sentences for a person"
    if any(marker in text for marker in PROMPT_MARKERS):
        return "it repeats lines of your prompt; answer the person instead"
    if repetitive(text):
        return "it repeats itself over and over"
    if previous is not None and same_reply(text, previous):
        return "it repeats your previous reply; say something new about the newest message"
    return None


def same_reply(text: str, previous: str) -> bool:
    """True when ``text`` is a substantial previous reply again, exactly or nearly."""
    a, b = " ".join(text.lower().split()), " ".join(previous.lower().split())
    if min(len(a), len(b)) < _REPEATABLE_CHARS:
        return False
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() > _SAME_REPLY


def repetitive(text: str) -> bool:
    """True when ``text`` mostly repeats itself (a model stuck in a loop)."""
    words = text.split()
    if len(words) < 24:
        return False
    shingles = [" ".join(words[i : i + 6]) for i in range(len(words) - 5)]
    return len(set(shingles)) < 0.5 * len(shingles)


def cut_at_sentence(text: str) -> str:
    """A reply cut off for length, ended at its last full sentence and marked as cut."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    kept = text[: ends[-1]] if ends and ends[-1] > len(text) // 3 else text.rstrip()
    return kept.rstrip() + CUT_MARK

"""What the agent searches first for a message: the message, or for a follow-up, the question
it follows as well.

"and how do I check that it works?" or "what about the second one?" name nothing a search can
find; the question before them does. A large model rewrites such a query itself; a small one
(the kind self-hosters run on a CPU) searches the words as they stand and finds nothing of use.
So a message that reads as a follow-up is searched together with the person's previous one.
A follow-up, here (English): a short message that starts with a connective ("and", "what
about"…) or leans on a word pointing back ("it", "those", "the second"…).
"""

from __future__ import annotations

import re

# At most this many words: longer messages say what they are about themselves.
FOLLOW_UP_WORDS = 10

_CONNECTIVE = re.compile(
    r"^\s*(and|but|also|so|then|or|ok(ay)?|what about|how about|same for|and what about)\b",
    re.IGNORECASE,
)
# Not a bare "that" or "this": "why does R say that .3 + .6 is FALSE?" stands alone.
_POINTING_BACK = re.compile(
    r"\b(it|its|these|those|them|they|one|ones|former|latter|(that|this) one"
    r"|the (first|second|third|last|other|next|previous|same))\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")


def is_follow_up(message: str) -> bool:
    """Whether ``message`` reads as leaning on what was asked before it."""
    if len(_WORD.findall(message)) > FOLLOW_UP_WORDS:
        return False
    return bool(_CONNECTIVE.search(message) or _POINTING_BACK.search(message))


def first_search_query(message: str, previous: str | None) -> str:
    """The query to search first for ``message``, given the person's ``previous`` message."""
    if previous and previous.strip() and is_follow_up(message):
        return f"{previous.strip()} {message.strip()}"
    return message

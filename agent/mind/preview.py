"""The reply as the model writes it: the ``send_message`` text so far, from a streamed step.

An agent speaks only through ``send_message``, so what a person may watch being written is
that call's ``message`` argument: in a native call's streamed arguments, or in a call the
model writes as text (``{"name": "send_message", "arguments": {"message": "...``). Free text
is inner monologue and is never previewed. A preview is only a preview: the reply delivered
at the end of the turn (checked, its citations resolved) replaces it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from agent.mind.llm import StreamDelta

__all__ = ["PartialSink", "ReplyPreview", "partial_string"]

PartialSink = Callable[[str], None]

_SEND = "send_message"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_string(text: str, key: str, start: int = 0) -> str | None:
    """The value of the JSON string field ``key`` in ``text`` (from ``start``), as far as it
    has arrived; None until its opening quote has."""
    match = re.compile(rf'"{re.escape(key)}"\s*:\s*"').search(text, start)
    if match is None:
        return None
    out: list[str] = []
    i = match.end()
    while i < len(text):
        char = text[i]
        if char == '"':
            break
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= len(text):
            break  # an escape cut in half: wait for the rest
        code = text[i + 1]
        if code == "u":
            digits = text[i + 2 : i + 6]
            if len(digits) < 4:
                break
            if all(c in string.hexdigits for c in digits):
                out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(code, code))
        i += 2
    # Surrogate pairs (emoji as two escapes) joined; a half still waiting for its pair goes.
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16", "ignore")


class ReplyPreview:
    """Follows one streamed step and shows the reply it is writing, each time it grows."""

    def __init__(self, show: PartialSink) -> None:
        self._show = show
        self._content: list[str] = []
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}
        self._shown = ""

    def __call__(self, delta: StreamDelta) -> None:
        if delta.call is None:
            self._content.append(delta.content)
            text = "".join(self._content)
            at = text.find(f'"{_SEND}"')
            self._update(partial_string(text, "message", at) if at >= 0 else None)
            return
        if delta.name:
            self._names[delta.call] = self._names.get(delta.call, "") + delta.name
        self._arguments.setdefault(delta.call, []).append(delta.arguments)
        if self._names.get(delta.call) == _SEND:
            self._update(partial_string("".join(self._arguments[delta.call]), "message"))

    def _update(self, text: str | None) -> None:
        # Only growth is shown: a second send_message in the same step waits for the turn's end.
        if text and text.startswith(self._shown) and text.strip() and text != self._shown:
            self._shown = text
            self._show(text)

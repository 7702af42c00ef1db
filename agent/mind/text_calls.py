"""Function calls that a model wrote into its text instead of making them natively.

Open models behind llama.cpp, Ollama or vLLM often write calls as content: ``<tool_call>`` tags
(several, the last maybe unclosed), fenced, bare, double-braced or listed JSON objects, OpenAI's
``{"type": "function", "function": {...}}``, llama 3.1's ``<function=f>{...}</function>`` and
``<|python_tag|>{...}``. Only the standard library: no I/O, linear time on any input.

* An object with a ``name`` and ``arguments`` (or ``parameters``) is a call whatever its name:
  the loop then tells the model that there is no such function, which teaches it more than
  showing people its JSON. ``known`` only widens this: a known name may leave ``arguments``
  out, its other keys then being the arguments. Other JSON, such as a schema echoed from the
  prompt (it has a ``description``), is not a call and stays in ``rest``.
* In an explicit wrapper (``<tool_call>``, a ```` ```tool_call ```` fence) any object with a
  name is a call, also as a single-quoted Python literal. A body that does not parse becomes a
  call with the raw text as arguments if a name can be read (the loop's argument check then
  says what to fix); else, empty or not, it is dropped and counted in ``malformed`` so the loop
  can ask again. Text in a wrapper is never prose. A bare call cut short by the token limit is
  read the same way, to the end of the text.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Final
from uuid import uuid4

from agent.mind.llm import ToolCall

__all__ = ["TextCalls", "is_clean_reply", "parse_text_calls", "strip_markup"]

_DECODER: Final = json.JSONDecoder()
# Marks each place something was cut out, so that whitespace is tidied there and nowhere else.
_SEAM: Final = "\x00"
_BROKEN: Final = object()
_LITERAL_LIMIT: Final = 20_000

_OPENER = re.compile(r"[{\[]")
_CLOSING_BRACES = re.compile(r"(?:\s*\})*")
_TOKEN = re.compile(r'[{}\[\]"\\\n]')
_WRAPPER = re.compile(r"<tool_call>|<function=(?P<fn>[^>\s]{1,100})>|^[ \t]*```tool_call\s*$", re.M)
# A body ends at its closing tag or at the next opening one: one pass, however many are unclosed.
_BODY_END: Final = {
    "<": re.compile(r"(?P<close></tool_call>)|<tool_call>"),
    "f": re.compile(r"(?P<close></function>)|<function="),
    "`": re.compile(r"^[ \t]*(?P<close>```)", re.M),
}
_CUT_SHORT = re.compile(
    r'\{\s*"name"\s*:\s*"(?P<name>[^"\\\n]{1,100})"'
    r'(?P<args>\s*,\s*"(?:arguments|parameters)"\s*:\s*)?'
)
# Schemas echoed from the prompt and made-up results are neither prose nor calls. A block
# stops at the next opening tag, so that many unclosed ones still cost one pass.
_BLOCKS = (
    r"<tools>(?:(?!</?tools>)[\s\S])*</tools>"
    r"|<tool_response>(?:(?!</?tool_response>)[\s\S])*</tool_response>"
)
_BLOCK = re.compile(_BLOCKS)
_MARKUP = re.compile(
    _BLOCKS + r"|<tool_call>\s*</tool_call>|<function=[^>\s]{1,100}>\s*</function>"
    r"|<\|im_start\|>(?:system|user|assistant|tool)?|<\|start_header_id\|>\w*<\|end_header_id\|>"
    r"|<[|\uff5c][^|\uff5c<>\s]{1,40}[|\uff5c]>|</?(?:tool_call|tools|tool_response|function)>"
)
_FENCE = re.compile(r"^[ \t]*```[^`\n]*$", re.M)
_JSON_START = re.compile(r'[\[{]\s*["{\[]')


@dataclass(frozen=True)
class TextCalls:
    """What :func:`parse_text_calls` read in a message's text."""

    calls: list[ToolCall]
    """In the order written, each with a fresh id."""
    rest: str
    """The text without the calls and their markup: the model's own prose, possibly empty."""
    malformed: int = 0
    """Wrappers that held no readable call, dropped from ``rest``."""


def parse_text_calls(content: str, known: Collection[str]) -> TextCalls:
    """The calls written in ``content`` (``known``: the functions' names) and the prose left."""
    text = _BLOCK.sub(_SEAM, content.replace(_SEAM, ""))
    calls: list[ToolCall] = []
    kept: list[str] = []
    malformed = pos = 0
    while (m := _WRAPPER.search(text, pos)) is not None:
        found, prose = _scan(text[pos : m.start()], known, explicit=False)
        calls += found
        kept += (prose, _SEAM)
        kind = "f" if m["fn"] else m.group().lstrip()[0]
        body_end = _BODY_END[kind].search(text, m.end())
        end = body_end.start() if body_end else len(text)
        pos = body_end.end() if body_end and body_end["close"] else end
        body = text[m.end() : end]
        if m["fn"]:
            calls.append(_tool_call(m["fn"], _arguments(body.strip() or None)))
            continue
        found, _ = _scan(body, known, explicit=True)
        if not found and len(body) <= _LITERAL_LIMIT:
            with suppress(ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                found = _calls_in(ast.literal_eval(body.strip()), known, explicit=True)
        calls += found
        malformed += 0 if found else 1
    found, prose = _scan(text[pos:], known, explicit=False)
    kept.append(prose)
    return TextCalls(calls + found, strip_markup("".join(kept)), malformed)


def is_clean_reply(text: str) -> bool:
    """Whether ``text`` may be shown to a person: words, not calls, markup or JSON, even cut."""
    shown = text.strip()
    if strip_markup(shown) != shown or not any(map(str.isalnum, shown)) or _JSON_START.match(shown):
        return False
    parsed = parse_text_calls(shown, ())
    return not parsed.calls and not parsed.malformed and _json_share(shown) < 0.5


def strip_markup(text: str) -> str:
    """``text`` without chat-template tokens, tool-call tags and empty wrappers, tidied."""
    return _tidy(_drop_empty_fences(_MARKUP.sub(_SEAM, text)))


def _spans(text: str) -> dict[int, int]:
    """The end of each balanced bracket span, by its start; strings inside brackets skipped."""
    ends: dict[int, int] = {}
    stack: list[int] = []
    quoted, skip = False, -1
    for m in _TOKEN.finditer(text):
        at, char = m.start(), m.group()
        if at == skip:
            continue
        if quoted:
            skip = at + 1 if char == "\\" else skip
            quoted = char not in '"\n'
        elif char == '"':
            quoted = bool(stack)
        elif char in "{[":
            stack.append(at)
        elif stack and text[stack[-1]] + char in ("{}", "[]"):
            ends[stack.pop()] = at + 1
    return ends


def _decode(text: str, at: int, ends: dict[int, int]) -> tuple[object, int]:
    """The JSON value at ``at`` and its end, or ``_BROKEN`` and how far the attempt read."""
    # The span alone: a decode error counts the lines of all the text before it (quadratic).
    close = ends.get(at, at + 1)
    try:
        value, size = _DECODER.raw_decode(text[at:close])
    except (ValueError, RecursionError):
        return _BROKEN, close
    return value, at + size


def _values(text: str, ends: dict[int, int]) -> Iterator[tuple[int, int, object]]:
    """Each JSON value that starts at a brace or bracket, in order; ``_BROKEN`` if none parses."""
    # Failures within failures ({{{{...}}}}) cost quadratic time: past a few passes, it is prose.
    budget, at = 4 * len(text) + 4096, 0
    while budget > 0 and (m := _OPENER.search(text, at)) is not None:
        at = m.start()
        value, end = _decode(text, at, ends)
        if value is _BROKEN:
            budget -= end - at
            end = at + 1
        yield at, end, value
        at = end


def _scan(text: str, known: Collection[str], explicit: bool) -> tuple[list[ToolCall], str]:
    """The calls written as JSON in ``text``, and ``text`` with each cut out."""
    calls: list[ToolCall] = []
    pieces: list[str] = []
    ends, done = _spans(text), 0
    for start, stop, value in _values(text, ends):
        if start < done:
            continue
        if value is not _BROKEN:
            found = _calls_in(value, known, explicit)
        elif salvaged := _salvage(text, start, ends, known, explicit):
            found, stop = salvaged
        else:
            continue
        if found:
            start, stop = _widen(text, start, stop, done)
            pieces += (text[done:start], _SEAM)
            calls += found
            done = stop
    pieces.append(text[done:])
    return calls, "".join(pieces)


def _salvage(
    text: str, at: int, ends: dict[int, int], known: Collection[str], explicit: bool
) -> tuple[list[ToolCall], int] | None:
    """A call whose JSON does not parse but whose name can be read, and where it ends."""
    m = _CUT_SHORT.match(text, at)
    if m is None or not (m["args"] or explicit or m["name"] in known):
        return None
    args = m.end() if m["args"] else at
    value, end = _decode(text, args, ends) if m["args"] else (_BROKEN, 0)
    if value is _BROKEN:
        return [_tool_call(m["name"], text[args:].strip())], len(text)
    return [_tool_call(m["name"], _arguments(value))], end


def _widen(text: str, start: int, end: int, floor: int) -> tuple[int, int]:
    """Take in the stray braces around a call, as in the double-braced ``{{"name": ...}}``."""
    k = start
    while k > floor and (text[k - 1].isspace() or text[k - 1] == "{"):
        k -= 1
        start = k if text[k] == "{" else start
    closing = _CLOSING_BRACES.match(text, end)
    return start, closing.end() if closing else end


def _calls_in(value: object, known: Collection[str], explicit: bool) -> list[ToolCall]:
    """The calls in a decoded value: one, a list of them, or ``{"tool_calls": [...]}``."""
    if isinstance(value, dict) and (call := _as_call(value, known, explicit)) is not None:
        return [call]
    if isinstance(value, dict) and "tool_calls" in value:
        value, explicit = value["tool_calls"], True
    items = value if isinstance(value, list) else [value]
    calls = [_as_call(item, known, explicit) for item in items]
    return [c for c in calls if c is not None] if items and None not in calls else []


def _as_call(value: object, known: Collection[str], explicit: bool) -> ToolCall | None:
    if isinstance(value, dict) and isinstance(value.get("function"), dict) and "name" not in value:
        value, explicit = value["function"], True
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    if not isinstance(name, str) or not name.strip() or "description" in value:
        return None
    for key in ("arguments", "parameters"):
        if key in value:
            return _tool_call(name, _arguments(value[key]))
    rest = {k: v for k, v in value.items() if k != "name" and (k, v) != ("type", "function")}
    return _tool_call(name, _dumps(rest)) if explicit or name.strip() in known else None


def _arguments(raw: object) -> str:
    """JSON object text; a string that is not one is passed on for the loop to refuse."""
    if not isinstance(raw, str):
        return "{}" if raw is None else _dumps(raw)
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    return _dumps(parsed) if isinstance(parsed, dict) else raw


def _dumps(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "null"  # a set from a Python literal, or too deep: the loop says "not an object"


def _tool_call(name: str, arguments: str) -> ToolCall:
    name, arguments = name.replace(_SEAM, "").strip(), arguments.replace(_SEAM, "")
    return ToolCall(id=f"call_{uuid4().hex[:24]}", name=name, arguments=arguments)


def _drop_empty_fences(text: str) -> str:
    fences, done = list(_FENCE.finditer(text)), 0
    pieces: list[str] = []
    for opening, closing in zip(fences[::2], [*fences[1::2], None], strict=False):
        stop = closing.start() if closing else len(text)
        if "".join(text[opening.end() : stop].replace(_SEAM, "").split()) in ("", "{}", "[]"):
            pieces += (text[done : opening.start()], _SEAM)
            done = closing.end() if closing else stop
    return "".join(pieces) + text[done:]


def _tidy(text: str) -> str:
    """Join the pieces around each cut with the larger of the line breaks on either side."""
    out: list[str] = []
    trail = ""
    for piece in text.split(_SEAM):
        if core := piece.strip():
            lead = piece[: len(piece) - len(piece.lstrip())]
            if out:
                out.append("\n" * min(2, max(trail.count("\n"), lead.count("\n"))) or " ")
            out.append(core)
            trail = piece[len(piece.rstrip()) :]
    return "".join(out)


def _json_share(text: str) -> float:
    """How much of ``text``, fence lines aside, is JSON objects and arrays."""
    total = len("".join(_FENCE.sub("", text).split()))
    values = _values(text, _spans(text))
    data = sum(len("".join(text[s:e].split())) for s, e, v in values if isinstance(v, (dict, list)))
    return data / total if total > 0 else 1.0

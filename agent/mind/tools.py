"""Function-calling schemas made from the functions themselves, and checks of the model's calls.

A tool is a plain (sync or async) Python function. Its name, type hints and Google-style
docstring are the one source of truth, as in Letta: :func:`tool_schema` turns them into the
chat API's function schema, and :func:`validate_arguments` checks the model's JSON against the
same description, so the schema the model sees and the check its calls pass cannot drift apart.

Rules:

* Supported types: ``str``, ``int``, ``float``, ``bool``, ``list[X]``, ``Literal[...]`` (of
  strings or of ints), and ``X | None``. Anything else is refused when the schema is built.
* A parameter without a default is required, unless its type admits None: the model may then
  leave it out and the function gets None.
* Parameters named ``self`` or ``ctx`` are the caller's to pass (the agent, its context), never
  the model's: they are left out of the schema and their type hints are never evaluated, so a
  context type imported only under ``TYPE_CHECKING`` is fine.
* Every other parameter needs an entry under ``Args:``; a docstring entry for a parameter that
  does not exist is refused too, so the documentation cannot go stale silently.
* Every tool except those in :data:`NO_HEARTBEAT` gets an optional ``request_heartbeat``
  boolean (MemGPT semantics: ask to run again right after the function, instead of waiting for
  the next user message). It is added here, by name, rather than by a flag at each call site,
  so the schema and the argument check always agree on it.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

from agent.errors import ArchivistError

HEARTBEAT = "request_heartbeat"
HEARTBEAT_DESCRIPTION = (
    "Request an immediate heartbeat after function execution. Set to true if you want to send"
    " a follow-up message or run a follow-up function."
)
# send_message ends the agent's turn: asking to run again after it would make no sense.
NO_HEARTBEAT: frozenset[str] = frozenset({"send_message"})
CONTEXT_PARAMETERS: frozenset[str] = frozenset({"self", "ctx"})

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Returns|Return|Yields|Raises|Examples?|Notes?|Warnings?"
    r"|See Also|Todo|Attributes):\s*$"
)
_ARG_ENTRY = re.compile(r"^\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SCALARS: dict[type, tuple[str, str]] = {
    str: ("string", "a string"),
    int: ("integer", "an integer"),
    float: ("number", "a number"),
    bool: ("boolean", "true or false"),
}


class ToolArgumentError(ArchivistError):
    """The model's arguments for a function call are unusable; the message is for the model."""


@dataclass(frozen=True)
class _Parameter:
    name: str
    annotation: Any
    schema: dict[str, Any]
    required: bool
    optional_none: bool  # admits None and has no default: the function gets None if left out


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    parameters: tuple[_Parameter, ...]
    heartbeat: bool


def tool_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The chat API ``{"type": "function", "function": {...}}`` schema of a tool function.

    Raises TypeError for an unsupported signature or type, ValueError for a missing or
    mismatched docstring; both mean the tool is defined wrongly, not that the model erred.
    """
    tool = _describe(fn)
    properties: dict[str, Any] = {}
    for parameter in tool.parameters:
        properties[parameter.name] = parameter.schema
    if tool.heartbeat:
        properties[HEARTBEAT] = {"type": "boolean", "description": HEARTBEAT_DESCRIPTION}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": [p.name for p in tool.parameters if p.required],
            },
        },
    }


def validate_arguments(fn: Callable[..., Any], raw_json: str) -> dict[str, Any]:
    """The model's JSON arguments for ``fn``, checked against its signature and converted.

    Returns the keyword arguments to call ``fn`` with (after the caller's own ``ctx``), with
    None filled in for left-out parameters whose type admits None. For a tool that takes a
    heartbeat the dict also holds :data:`HEARTBEAT` (False when left out): pop it before the
    call. A tool without a heartbeat ignores one sent anyway: models trained on MemGPT send it
    everywhere, and refusing ``send_message`` over it would lose the reply. An empty string
    counts as ``{}``, as some servers send it for argument-less calls.
    Raises :class:`ToolArgumentError` with a message that tells the model what to fix.
    """
    tool = _describe(fn)
    fail = f"{tool.name} failed:"
    try:
        arguments = json.loads(raw_json or "{}", parse_constant=_reject_constant)
    except ValueError as error:
        raise ToolArgumentError(
            f"{fail} the arguments are not valid JSON ({error}); send one JSON object."
        ) from None
    if not isinstance(arguments, dict):
        raise ToolArgumentError(
            f"{fail} the arguments must be a JSON object of named parameters,"
            f" not {_json_kind(arguments)}."
        )
    parameters = {p.name: p for p in tool.parameters}
    if not tool.heartbeat:
        arguments.pop(HEARTBEAT, None)
    known = [*parameters, *([HEARTBEAT] if tool.heartbeat else [])]
    unknown = [name for name in arguments if name not in known]
    if unknown:
        raise ToolArgumentError(
            f"{fail} unknown parameter{'s' if len(unknown) > 1 else ''} {_names(unknown)};"
            f" the parameters are {_names(known) if known else 'none'}."
        )
    missing = [p.name for p in tool.parameters if p.required and p.name not in arguments]
    if missing:
        raise ToolArgumentError(
            f"{fail} missing required parameter{'s' if len(missing) > 1 else ''} {_names(missing)}."
        )
    checked: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name in arguments:
            checked[name] = _check(arguments[name], parameter.annotation, f"{fail} '{name}'")
        elif parameter.optional_none:
            checked[name] = None
    if tool.heartbeat:
        checked[HEARTBEAT] = _check(arguments.get(HEARTBEAT, False), bool, f"{fail} '{HEARTBEAT}'")
    return checked


def _describe(fn: Callable[..., Any]) -> _Tool:
    name = fn.__name__
    docstring = inspect.getdoc(fn)
    if not docstring:
        raise ValueError(f"tool {name} has no docstring")
    description, documented = _parse_docstring(docstring)
    if not description:
        raise ValueError(f"tool {name} has no description before its docstring sections")
    signature = inspect.signature(fn)
    model_parameters = [
        p for p in signature.parameters.values() if p.name not in CONTEXT_PARAMETERS
    ]
    hints = _type_hints(fn, model_parameters)
    parameters: list[_Parameter] = []
    for p in model_parameters:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise TypeError(f"tool {name}: parameter {p.name} must be passable by keyword")
        if p.name not in hints:
            raise TypeError(f"tool {name}: parameter {p.name} has no type hint")
        if p.name not in documented:
            raise ValueError(f"tool {name}: parameter {p.name} is not described under Args:")
        has_default = p.default is not p.empty
        admits_none = _admits_none(hints[p.name])
        schema = _type_schema(hints[p.name], name, p.name)
        parameters.append(
            _Parameter(
                name=p.name,
                annotation=hints[p.name],
                schema={**schema, "description": documented[p.name]},
                required=not has_default and not admits_none,
                optional_none=not has_default and admits_none,
            )
        )
    stale = set(documented) - {p.name for p in parameters}
    if stale:
        raise ValueError(f"tool {name}: Args: describes no such parameter {sorted(stale)}")
    return _Tool(name, description, tuple(parameters), heartbeat=name not in NO_HEARTBEAT)


def _type_hints(fn: Callable[..., Any], parameters: list[inspect.Parameter]) -> dict[str, Any]:
    # Evaluate only the model's parameters' hints: the context parameter's type may exist
    # only for type checkers. A bound method's globals are its function's.
    function = inspect.unwrap(getattr(fn, "__func__", fn))
    annotations = {p.name: p.annotation for p in parameters if p.annotation is not p.empty}
    holder = types.SimpleNamespace(__annotations__=annotations)
    return typing.get_type_hints(holder, globalns=getattr(function, "__globals__", None))


def _parse_docstring(docstring: str) -> tuple[str, dict[str, str]]:
    """The description (text before the first section) and each ``Args:`` entry's text."""
    summary: list[str] = []
    arguments: dict[str, list[str]] = {}
    section: str | None = None
    entry_indent: int | None = None
    current: list[str] | None = None
    for line in docstring.splitlines():
        header = _SECTION.match(line)
        if header:
            section, entry_indent, current = header.group(1), None, None
            continue
        if section is None:
            summary.append(line.strip())
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        entry = _ARG_ENTRY.match(line.strip())
        if entry_indent is None:
            entry_indent = indent
        if entry and indent == entry_indent:
            current = arguments.setdefault(entry.group(1), [])
            current.append(entry.group(2))
        elif current is not None:
            current.append(line.strip())
    return _paragraphs(summary), {
        name: " ".join(w for w in text if w) for name, text in arguments.items()
    }


def _paragraphs(lines: list[str]) -> str:
    # Docstrings wrap lines for the source's width; the model should read paragraphs.
    paragraphs = " ".join(line or "\n\n" for line in lines).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _admits_none(annotation: Any) -> bool:
    return _is_union(annotation) and type(None) in typing.get_args(annotation)


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _type_schema(annotation: Any, tool: str, parameter: str) -> dict[str, Any]:
    if _is_union(annotation):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _type_schema(members[0], tool, parameter)
    elif annotation in _SCALARS:
        return {"type": _SCALARS[annotation][0]}
    elif typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (None,)
        if item is not None:
            return {"type": "array", "items": _type_schema(item, tool, parameter)}
    elif typing.get_origin(annotation) is Literal:
        values = typing.get_args(annotation)
        for kind in (str, int):
            if all(type(v) is kind for v in values):
                return {"type": _SCALARS[kind][0], "enum": list(values)}
    raise TypeError(f"tool {tool}: parameter {parameter} has unsupported type {annotation!r}")


def _check(value: Any, annotation: Any, where: str) -> Any:
    """``value`` if it fits ``annotation`` (ints become floats where floats are wanted)."""
    if _is_union(annotation):
        if value is None:
            return None
        (member,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _check(value, member, where)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        # type() too: JSON true must not pass for the literal 1.
        if any(value == v and type(value) is type(v) for v in allowed):
            return value
        choices = ", ".join(json.dumps(v) for v in allowed)
        raise ToolArgumentError(f"{where} must be one of {choices}, not {_shown(value)}.")
    if origin is list:
        if not isinstance(value, list):
            raise ToolArgumentError(f"{where} must be a list, not {_json_kind(value)}.")
        (item,) = typing.get_args(annotation)
        return [_check(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    # bool is an int in Python but not in JSON: true is no integer.
    if annotation is float and type(value) in (int, float):
        return float(value)
    if type(value) is annotation:
        return value
    shown = "" if value is None or isinstance(value, (list, dict)) else f" ({_shown(value)})"
    raise ToolArgumentError(
        f"{where} must be {_SCALARS[annotation][1]}, not {_json_kind(value)}{shown}."
    )


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text[:60] + "…" if len(text) > 60 else text


def _names(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)

"""Tool schemas from signatures and docstrings, and checks of the model's arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pytest

from agent.mind.tools import HEARTBEAT, ToolArgumentError, tool_schema, validate_arguments

if TYPE_CHECKING:
    # Never importable at run time: the schema must not need the context's type.
    from tests.agent.no_such_module import AgentContext  # type: ignore[import-not-found]


async def conversation_search(
    ctx: AgentContext,
    query: str,
    page: int = 0,
    mode: Literal["keyword", "semantic"] = "keyword",
    roles: list[str] | None = None,
    *,
    since: str | None,
) -> str:
    """Search prior conversation history by words.

    Finds messages of the whole conversation, including those no longer
    in the context window.

    Args:
        query (str): Words to look for.
        page: Which page of results to show, counting from 0. Use it only on a
            follow-up query.
        mode: How to match.
        roles: Whose messages to search.
        since: Only messages after this ISO date.

    Returns:
        str: The matching messages.
    """
    return ""


def send_message(message: str) -> None:
    """Send a message to the people in the channel.

    Args:
        message: Message contents. All unicode (including emojis) is supported.
    """


def weigh(grams: float, exact: bool) -> float:
    """Weigh something.

    Args:
        grams: The weight.
        exact: Whether to round.
    """
    return grams


class Memory:
    def core_memory_append(self, label: Literal["persona", "human"], content: str) -> None:
        """Append to a core memory block.

        Args:
            label: Which block to edit.
            content: What to add.
        """


def _function(schema: dict[str, Any]) -> dict[str, Any]:
    assert schema["type"] == "function"
    function: dict[str, Any] = schema["function"]
    return function


def test_schema_comes_from_signature_and_docstring() -> None:
    function = _function(tool_schema(conversation_search))
    assert function["name"] == "conversation_search"
    assert function["description"] == (
        "Search prior conversation history by words.\n\n"
        "Finds messages of the whole conversation, including those no longer in the context window."
    )
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert parameters["required"] == ["query"]
    properties = parameters["properties"]
    assert list(properties) == ["query", "page", "mode", "roles", "since", HEARTBEAT]
    assert properties["query"] == {"type": "string", "description": "Words to look for."}
    assert properties["page"] == {
        "type": "integer",
        "description": "Which page of results to show, counting from 0."
        " Use it only on a follow-up query.",
    }
    assert properties["mode"] == {
        "type": "string",
        "enum": ["keyword", "semantic"],
        "description": "How to match.",
    }
    assert properties["roles"]["type"] == "array"
    assert properties["roles"]["items"] == {"type": "string"}
    assert properties["since"]["type"] == "string"
    assert properties[HEARTBEAT]["type"] == "boolean"
    assert "ctx" not in properties


def test_send_message_has_no_heartbeat_and_others_do() -> None:
    send = _function(tool_schema(send_message))["parameters"]
    assert list(send["properties"]) == ["message"]
    assert send["required"] == ["message"]
    weighed = _function(tool_schema(weigh))["parameters"]
    assert weighed["properties"]["grams"]["type"] == "number"
    assert weighed["properties"]["exact"]["type"] == "boolean"
    assert weighed["required"] == ["grams", "exact"]
    assert HEARTBEAT in weighed["properties"]


def test_self_is_skipped_for_methods_bound_or_not() -> None:
    for fn in (Memory.core_memory_append, Memory().core_memory_append):
        function = _function(tool_schema(fn))
        assert function["name"] == "core_memory_append"
        assert function["parameters"]["required"] == ["label", "content"]
        assert "self" not in function["parameters"]["properties"]
    assert validate_arguments(
        Memory().core_memory_append, '{"label": "human", "content": "likes tea"}'
    ) == {"label": "human", "content": "likes tea", HEARTBEAT: False}


def test_valid_arguments_are_returned_ready_to_call() -> None:
    arguments = validate_arguments(
        conversation_search,
        '{"query": "tea", "page": 2, "mode": "semantic", "roles": ["user"],'
        ' "request_heartbeat": true}',
    )
    # since admits None and has no default: filled in so the call needs nothing else.
    assert arguments == {
        "query": "tea",
        "page": 2,
        "mode": "semantic",
        "roles": ["user"],
        "since": None,
        HEARTBEAT: True,
    }
    assert validate_arguments(send_message, '{"message": "hi 👋"}') == {"message": "hi 👋"}


def test_ints_pass_for_floats_and_become_floats() -> None:
    arguments = validate_arguments(weigh, '{"grams": 3, "exact": false}')
    assert arguments == {"grams": 3.0, "exact": False, HEARTBEAT: False}
    assert isinstance(arguments["grams"], float)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"query": ', "conversation_search failed: the arguments are not valid JSON"),
        ('["tea"]', "must be a JSON object of named parameters, not a list"),
        ('"tea"', "must be a JSON object of named parameters, not a string"),
        ("{}", "missing required parameter 'query'"),
        ("", "missing required parameter 'query'"),
        ('{"query": "x", "ctx": 1}', "unknown parameter 'ctx'; the parameters are 'query',"),
        ('{"query": "x", "limit": 1, "sort": 2}', "unknown parameters 'limit', 'sort'"),
        ('{"query": 5}', "'query' must be a string, not an integer (5)"),
        ('{"query": null}', "'query' must be a string, not null."),
        ('{"query": "x", "page": "2"}', "'page' must be an integer, not a string (\"2\")"),
        ('{"query": "x", "page": 1.5}', "'page' must be an integer, not a decimal number (1.5)"),
        ('{"query": "x", "page": true}', "'page' must be an integer, not a boolean (true)"),
        ('{"query": "x", "mode": "fuzzy"}', '\'mode\' must be one of "keyword", "semantic"'),
        ('{"query": "x", "roles": "user"}', "'roles' must be a list, not a string"),
        ('{"query": "x", "roles": ["user", 3]}', "'roles'[1] must be a string"),
        ('{"query": "x", "request_heartbeat": "yes"}', "'request_heartbeat' must be true or false"),
        ('{"query": NaN}', "not valid JSON (NaN is not a JSON number)"),
    ],
)
def test_invalid_arguments_get_a_message_for_the_model(raw: str, message: str) -> None:
    with pytest.raises(ToolArgumentError) as caught:
        validate_arguments(conversation_search, raw)
    assert message in str(caught.value)
    assert str(caught.value).startswith("conversation_search failed:")


def test_send_message_ignores_a_heartbeat_rather_than_lose_the_reply() -> None:
    raw = '{"message": "hi", "request_heartbeat": true}'
    assert validate_arguments(send_message, raw) == {"message": "hi"}


def test_booleans_do_not_pass_for_floats() -> None:
    with pytest.raises(ToolArgumentError, match="'grams' must be a number, not a boolean"):
        validate_arguments(weigh, '{"grams": true, "exact": true}')


def undocumented(query: str, page: int) -> None:
    """Search.

    Args:
        query: Words.
    """


def stale_docs(query: str) -> None:
    """Search.

    Args:
        query: Words.
        limit: Gone.
    """


def no_docstring(query: str) -> None:
    pass


def untyped(query) -> None:  # type: ignore[no-untyped-def]
    """Search.

    Args:
        query: Words.
    """


def dict_typed(options: dict[str, str]) -> None:
    """Search.

    Args:
        options: Options.
    """


def variadic(*queries: str) -> None:
    """Search.

    Args:
        queries: Words.
    """


@pytest.mark.parametrize(
    ("fn", "error", "message"),
    [
        (undocumented, ValueError, "parameter page is not described under Args:"),
        (stale_docs, ValueError, "describes no such parameter ['limit']"),
        (no_docstring, ValueError, "has no docstring"),
        (untyped, TypeError, "parameter query has no type hint"),
        (dict_typed, TypeError, "parameter options has unsupported type"),
        (variadic, TypeError, "must be passable by keyword"),
    ],
)
def test_badly_defined_tools_are_refused_when_described(
    fn: Any, error: type[Exception], message: str
) -> None:
    for describe in (tool_schema, lambda f: validate_arguments(f, "{}")):
        with pytest.raises(error) as caught:
            describe(fn)
        assert message in str(caught.value)

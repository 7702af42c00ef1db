"""Function calls written as text by open models (issue 11), and which texts people may see.

Every input is written the way a model behind llama.cpp, Ollama or vLLM writes it; the
double-braced and ``<tools>`` cases are verbatim from Qwen2.5-Coder-1.5B-Instruct through
``llama-server --jinja``.
"""

from __future__ import annotations

import re

import pytest

from agent.mind.text_calls import TextCalls, is_clean_reply, parse_text_calls, strip_markup

KNOWN = frozenset(
    {
        "send_message",
        "core_memory_append",
        "core_memory_replace",
        "conversation_search",
        "conversation_search_date",
        "archival_memory_insert",
        "archival_memory_search",
    }
)


def parse(text: str) -> TextCalls:
    return parse_text_calls(text, KNOWN)


def calls(text: str) -> list[tuple[str, str]]:
    return [(c.name, c.arguments) for c in parse(text).calls]


def rest(text: str) -> str:
    return parse(text).rest


# --- Qwen as seen in issue 11 ------------------------------------------------------------------


def test_the_double_braced_call_from_the_issue() -> None:
    text = '{{"name": "conversation_search", "arguments": {"query": "backup schedule"}}}'
    found = parse(text)
    assert [(c.name, c.arguments) for c in found.calls] == [
        ("conversation_search", '{"query": "backup schedule"}')
    ]
    assert found.rest == ""
    assert found.malformed == 0


def test_a_double_braced_call_after_a_thought() -> None:
    text = (
        "The user asks about the backups; let me check what we said before.\n"
        '{{"name": "conversation_search", "arguments": {"query": "backups", "page": 0}}}'
    )
    assert calls(text) == [("conversation_search", '{"query": "backups", "page": 0}')]
    assert rest(text) == "The user asks about the backups; let me check what we said before."


def test_a_double_braced_call_spread_over_lines() -> None:
    text = '{{\n  "name": "send_message",\n  "arguments": {"message": "Done."}\n}}'
    assert calls(text) == [("send_message", '{"message": "Done."}')]
    assert rest(text) == ""


def test_empty_tools_wrappers_repeated_verbatim_are_dropped() -> None:
    found = parse("<tools>\n\n</tools>\n<tools>\n\n</tools>\n<tools>\n\n</tools>")
    assert found == TextCalls(calls=[], rest="", malformed=0)


def test_empty_tools_wrappers_before_a_real_call() -> None:
    text = (
        "<tools>\n\n</tools>\n<tool_call>\n"
        '{"name": "archival_memory_search", "arguments": {"query": "VPN setup"}}\n</tool_call>'
    )
    found = parse(text)
    assert [(c.name, c.arguments) for c in found.calls] == [
        ("archival_memory_search", '{"query": "VPN setup"}')
    ]
    assert found.rest == ""
    assert found.malformed == 0


def test_a_schema_echoed_inside_tools_is_no_call() -> None:
    text = (
        "<tools>\n"
        '{"type": "function", "function": {"name": "send_message", "description": "Send a'
        ' message.", "parameters": {"type": "object", "properties": {"message": {"type":'
        ' "string"}}}}}\n'
        "</tools>\nHello! How can I help?"
    )
    assert parse(text) == TextCalls(calls=[], rest="Hello! How can I help?", malformed=0)


# --- Hermes / Qwen <tool_call> -------------------------------------------------------------------


def test_a_schema_echoed_from_the_prompt_is_no_call() -> None:
    text = (
        "I can use this function:\n"
        '{"type": "function", "function": {"name": "send_message", "description": "Sends a'
        ' message to the user.", "parameters": {"type": "object", "properties": {"message":'
        ' {"type": "string"}}, "required": ["message"]}}}'
    )
    assert parse(text) == TextCalls(calls=[], rest=text, malformed=0)
    assert not is_clean_reply(text)


def test_one_hermes_call() -> None:
    text = (
        "<tool_call>\n"
        '{"name": "archival_memory_search", "arguments": {"query": "password rotation policy"}}\n'
        "</tool_call>"
    )
    assert calls(text) == [("archival_memory_search", '{"query": "password rotation policy"}')]
    assert rest(text) == ""


def test_several_hermes_calls_with_prose_before_and_after() -> None:
    text = (
        "I will look in both places.\n\n"
        "<tool_call>\n"
        '{"name": "conversation_search", "arguments": {"query": "deploy"}}\n'
        "</tool_call>\n"
        "<tool_call>\n"
        '{"name": "archival_memory_search", "arguments": {"query": "deploy checklist"}}\n'
        "</tool_call>\n\n"
        "Then I will answer."
    )
    assert calls(text) == [
        ("conversation_search", '{"query": "deploy"}'),
        ("archival_memory_search", '{"query": "deploy checklist"}'),
    ]
    assert rest(text) == "I will look in both places.\n\nThen I will answer."


def test_a_hermes_call_unclosed_at_the_end() -> None:
    text = (
        "Let me save that.\n<tool_call>\n"
        '{"name": "core_memory_append", "arguments": {"label": "human", "content": "Likes tea."}}'
    )
    assert calls(text) == [("core_memory_append", '{"label": "human", "content": "Likes tea."}')]
    assert rest(text) == "Let me save that."


def test_a_hermes_call_left_unclosed_before_the_next_one() -> None:
    text = (
        '<tool_call>\n{"name": "conversation_search", "arguments": {"query": "a"}}\n'
        '<tool_call>\n{"name": "conversation_search", "arguments": {"query": "b"}}\n</tool_call>'
    )
    assert calls(text) == [
        ("conversation_search", '{"query": "a"}'),
        ("conversation_search", '{"query": "b"}'),
    ]
    assert rest(text) == ""


def test_a_fenced_call_inside_tool_call_tags() -> None:
    text = (
        "<tool_call>\n```json\n"
        '{"name": "send_message", "arguments": {"message": "Backups run nightly."}}\n'
        "```\n</tool_call>"
    )
    assert calls(text) == [("send_message", '{"message": "Backups run nightly."}')]
    assert rest(text) == ""


def test_prose_inside_a_wrapper_is_not_kept() -> None:
    text = (
        "<tool_call>\nI need to search first.\n"
        '{"name": "conversation_search", "arguments": {"query": "printer"}}\n</tool_call>'
    )
    assert calls(text) == [("conversation_search", '{"query": "printer"}')]
    assert rest(text) == ""


def test_a_single_quoted_python_dict_in_tool_call_tags() -> None:
    text = (
        "<tool_call>\n{'name': 'send_message', 'arguments': {'message': \"It's on page 4.\"}}\n"
        "</tool_call>"
    )
    assert calls(text) == [("send_message", '{"message": "It\'s on page 4."}')]


def test_a_name_only_object_in_tool_call_tags_is_a_call_without_arguments() -> None:
    assert calls('<tool_call>\n{"name": "conversation_search"}\n</tool_call>') == [
        ("conversation_search", "{}")
    ]


# --- broken calls in wrappers: decisions ---------------------------------------------------------


def test_broken_arguments_with_a_readable_name_come_back_raw() -> None:
    # The loop's argument check then tells the model that its JSON does not parse.
    text = (
        "<tool_call>\n"
        '{"name": "conversation_search", "arguments": {"query": "backup", "page": }}\n'
        "</tool_call>"
    )
    found = parse(text)
    assert [(c.name, c.arguments) for c in found.calls] == [
        ("conversation_search", '{"query": "backup", "page": }}')
    ]
    assert found.rest == ""
    assert found.malformed == 0


def test_a_missing_closing_brace_still_gives_the_arguments() -> None:
    text = (
        '<tool_call>\n{"name": "send_message", "arguments": {"message": "Hi there!"}\n</tool_call>'
    )
    assert calls(text) == [("send_message", '{"message": "Hi there!"}')]


def test_an_unterminated_string_in_the_arguments_comes_back_raw() -> None:
    text = '<tool_call>\n{"name": "send_message", "arguments": {"message": "Hi}\n</tool_call>'
    assert calls(text) == [("send_message", '{"message": "Hi}')]


def test_a_wrapper_without_a_readable_name_is_counted_and_dropped() -> None:
    text = "Searching now.\n<tool_call>\nconversation_search(query=backups)\n</tool_call>"
    assert parse(text) == TextCalls(calls=[], rest="Searching now.", malformed=1)


def test_an_empty_tool_call_wrapper_is_malformed() -> None:
    assert parse("<tool_call>\n\n</tool_call>") == TextCalls(calls=[], rest="", malformed=1)


def test_malformed_wrappers_are_counted_one_each_beside_good_calls() -> None:
    text = (
        "<tool_call>\n{name: send_message}\n</tool_call>\n"
        '<tool_call>\n{"name": "send_message", "arguments": {"message": "ok"}}\n</tool_call>\n'
        "<tool_call>\n</tool_call>"
    )
    found = parse(text)
    assert [(c.name, c.arguments) for c in found.calls] == [("send_message", '{"message": "ok"}')]
    assert found.malformed == 2
    assert found.rest == ""


# --- fenced code blocks --------------------------------------------------------------------------


def test_a_fenced_json_call() -> None:
    text = '```json\n{"name": "archival_memory_search", "arguments": {"query": "onboarding"}}\n```'
    assert calls(text) == [("archival_memory_search", '{"query": "onboarding"}')]
    assert rest(text) == ""


def test_a_fenced_call_between_sentences() -> None:
    text = (
        "Let me search the documents.\n\n"
        "```json\n"
        "{\n"
        '  "name": "archival_memory_search",\n'
        '  "arguments": {\n'
        '    "query": "expense report deadline"\n'
        "  }\n"
        "}\n"
        "```\n\n"
        "I will report back."
    )
    assert calls(text) == [("archival_memory_search", '{"query": "expense report deadline"}')]
    assert rest(text) == "Let me search the documents.\n\nI will report back."


def test_a_fence_without_a_language() -> None:
    text = '```\n{"name": "send_message", "arguments": {"message": "Yes."}}\n```'
    assert calls(text) == [("send_message", '{"message": "Yes."}')]
    assert rest(text) == ""


def test_a_tool_call_fence() -> None:
    text = '```tool_call\n{"name": "send_message", "arguments": {"message": "Yes."}}\n```'
    found = parse(text)
    assert [(c.name, c.arguments) for c in found.calls] == [("send_message", '{"message": "Yes."}')]
    assert (found.rest, found.malformed) == ("", 0)


def test_a_broken_tool_call_fence_is_malformed() -> None:
    assert parse("```tool_call\nsearch for backups\n```") == TextCalls([], "", 1)


def test_a_fenced_list_of_calls() -> None:
    text = (
        "```json\n[\n"
        '  {"name": "conversation_search", "arguments": {"query": "vacation"}},\n'
        '  {"name": "archival_memory_search", "arguments": {"query": "vacation policy"}}\n'
        "]\n```"
    )
    assert calls(text) == [
        ("conversation_search", '{"query": "vacation"}'),
        ("archival_memory_search", '{"query": "vacation policy"}'),
    ]
    assert rest(text) == ""


def test_a_fence_holding_json_that_is_no_call_stays() -> None:
    text = 'Here is the setting:\n\n```json\n{"retries": 3, "timeout": 30}\n```'
    assert parse(text) == TextCalls(calls=[], rest=text, malformed=0)


def test_a_fenced_call_cut_off_before_its_closing_fence() -> None:
    text = '```json\n{"name": "send_message", "arguments": {"message": "The answer is 42."}}\n'
    assert calls(text) == [("send_message", '{"message": "The answer is 42."}')]
    assert rest(text) == ""


# --- bare JSON -----------------------------------------------------------------------------------


def test_a_bare_call_after_a_sentence() -> None:
    text = (
        "I'll search for that. "
        '{"name": "conversation_search", "arguments": {"query": "meeting notes"}}'
    )
    assert calls(text) == [("conversation_search", '{"query": "meeting notes"}')]
    assert rest(text) == "I'll search for that."


def test_a_bare_call_in_the_middle_of_a_sentence() -> None:
    text = 'Sure, {"name": "send_message", "arguments": {"message": "On it."}} as asked.'
    assert calls(text) == [("send_message", '{"message": "On it."}')]
    assert rest(text) == "Sure, as asked."


def test_parameters_instead_of_arguments() -> None:
    text = '{"name": "archival_memory_search", "parameters": {"query": "firewall rules"}}'
    assert calls(text) == [("archival_memory_search", '{"query": "firewall rules"}')]


def test_arguments_given_as_a_json_string() -> None:
    text = '{"name": "send_message", "arguments": "{\\"message\\": \\"See section 2.\\"}"}'
    assert calls(text) == [("send_message", '{"message": "See section 2."}')]


def test_arguments_as_a_string_that_is_not_json_are_passed_on() -> None:
    text = '{"name": "send_message", "arguments": "message=hello"}'
    assert calls(text) == [("send_message", "message=hello")]


def test_null_and_non_object_arguments() -> None:
    assert calls('{"name": "conversation_search", "arguments": null}') == [
        ("conversation_search", "{}")
    ]
    assert calls('{"name": "conversation_search", "arguments": ["backups"]}') == [
        ("conversation_search", '["backups"]')
    ]


def test_openai_nested_function_objects() -> None:
    text = (
        '{"type": "function", "function": {"name": "conversation_search_date",'
        ' "arguments": "{\\"start_date\\": \\"2024-01-01\\", \\"end_date\\": \\"2024-01-31\\"}"}}'
    )
    assert calls(text) == [
        ("conversation_search_date", '{"start_date": "2024-01-01", "end_date": "2024-01-31"}')
    ]
    assert rest(text) == ""


def test_an_openai_tool_calls_object() -> None:
    text = (
        '{"tool_calls": [{"id": "call_1", "type": "function", "function": {"name":'
        ' "send_message", "arguments": "{\\"message\\": \\"Hello\\"}"}}]}'
    )
    assert calls(text) == [("send_message", '{"message": "Hello"}')]
    assert rest(text) == ""


def test_a_bare_list_of_calls() -> None:
    text = (
        '[{"name": "core_memory_append", "arguments": {"label": "human", "content": "Is Ana."}},'
        ' {"name": "send_message", "arguments": {"message": "Nice to meet you, Ana!"}}]'
    )
    assert calls(text) == [
        ("core_memory_append", '{"label": "human", "content": "Is Ana."}'),
        ("send_message", '{"message": "Nice to meet you, Ana!"}'),
    ]
    assert rest(text) == ""


def test_two_bare_calls_on_their_own_lines() -> None:
    text = (
        '{"name": "conversation_search", "arguments": {"query": "invoice"}}\n'
        '{"name": "archival_memory_search", "arguments": {"query": "invoice"}}'
    )
    assert calls(text) == [
        ("conversation_search", '{"query": "invoice"}'),
        ("archival_memory_search", '{"query": "invoice"}'),
    ]
    assert rest(text) == ""


def test_a_list_missing_its_commas_still_gives_its_calls() -> None:
    text = (
        '[{"name": "conversation_search", "arguments": {"query": "a"}}\n'
        ' {"name": "conversation_search", "arguments": {"query": "b"}}]'
    )
    assert calls(text) == [
        ("conversation_search", '{"query": "a"}'),
        ("conversation_search", '{"query": "b"}'),
    ]


def test_calls_come_in_the_order_written_across_forms() -> None:
    text = (
        '{"name": "conversation_search", "arguments": {"query": "first"}}\n'
        '<tool_call>\n{"name": "archival_memory_search", "arguments": {"query": "second"}}\n'
        "</tool_call>\n"
        '<function=send_message>{"message": "third"}</function>\n'
        '```json\n{"name": "send_message", "arguments": {"message": "fourth"}}\n```'
    )
    assert [name_and_query[1] for name_and_query in calls(text)] == [
        '{"query": "first"}',
        '{"query": "second"}',
        '{"message": "third"}',
        '{"message": "fourth"}',
    ]
    assert rest(text) == ""


def test_a_bare_call_cut_short_by_the_token_limit_comes_back_raw() -> None:
    text = (
        "Here is my answer.\n"
        '{"name": "send_message", "arguments": {"message": "The backups run every night at 2'
    )
    found = parse(text)
    assert [(c.name, c.arguments) for c in found.calls] == [
        ("send_message", '{"message": "The backups run every night at 2')
    ]
    assert found.rest == "Here is my answer."


def test_a_bare_call_missing_its_last_brace() -> None:
    text = '{"name": "send_message", "arguments": {"message": "Done."}\nAnything else?'
    assert calls(text) == [("send_message", '{"message": "Done."}')]
    assert rest(text) == "Anything else?"


# --- known and unknown names: decisions ----------------------------------------------------------


def test_an_unknown_name_with_arguments_is_still_a_call() -> None:
    # The loop answers that there is no such function, so the model learns the real ones.
    text = '{"name": "web_search", "arguments": {"query": "weather Berlin"}}'
    assert calls(text) == [("web_search", '{"query": "weather Berlin"}')]
    assert rest(text) == ""


def test_a_known_name_may_leave_out_arguments() -> None:
    text = '{"name": "send_message", "message": "Your ticket is #4411."}'
    assert calls(text) == [("send_message", '{"message": "Your ticket is #4411."}')]


def test_a_known_name_with_its_type_and_no_arguments() -> None:
    text = '{"type": "function", "name": "archival_memory_search", "query": "SLA"}'
    assert calls(text) == [("archival_memory_search", '{"query": "SLA"}')]


def test_an_object_with_an_unknown_name_and_no_arguments_is_data() -> None:
    text = 'The record is {"name": "Ana Lima", "team": "Platform"}, added in May.'
    assert parse(text) == TextCalls(calls=[], rest=text, malformed=0)


def test_json_without_a_name_is_not_a_call() -> None:
    text = 'Set it like this: {"retries": 3, "backoff": [1, 2, 4]} and restart.'
    assert parse(text) == TextCalls(calls=[], rest=text, malformed=0)


def test_known_changes_what_a_flattened_object_is() -> None:
    text = '{"name": "lookup", "term": "SLA"}'
    assert parse_text_calls(text, {"lookup"}).calls[0].arguments == '{"term": "SLA"}'
    assert parse_text_calls(text, KNOWN).calls == []


def test_prose_with_braces_and_citations_has_no_calls() -> None:
    text = "Use {name} as a placeholder, as the guide says [1] and [2]."
    assert parse(text) == TextCalls(calls=[], rest=text, malformed=0)


# --- llama 3.1 -----------------------------------------------------------------------------------


def test_llama_function_tags() -> None:
    text = '<function=archival_memory_search>{"query": "vacation policy"}</function>'
    assert calls(text) == [("archival_memory_search", '{"query": "vacation policy"}')]
    assert rest(text) == ""


def test_several_llama_function_tags_and_an_empty_one() -> None:
    text = (
        "Checking.\n"
        '<function=conversation_search>{"query": "laptop"}</function>\n'
        "<function=conversation_search_date></function>"
    )
    assert calls(text) == [
        ("conversation_search", '{"query": "laptop"}'),
        ("conversation_search_date", "{}"),
    ]
    assert rest(text) == "Checking."


def test_llama_function_tag_with_broken_json_keeps_it_raw() -> None:
    text = '<function=send_message>{"message": "Hi</function>'
    assert calls(text) == [("send_message", '{"message": "Hi')]


def test_llama_python_tag() -> None:
    text = (
        '<|python_tag|>{"name": "archival_memory_search", "parameters": {"query": "SSO"}}<|eom_id|>'
    )
    assert calls(text) == [("archival_memory_search", '{"query": "SSO"}')]
    assert rest(text) == ""


def test_llama_python_tag_after_a_header() -> None:
    text = (
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
        '<|python_tag|>{"type": "function", "name": "send_message", "parameters":'
        ' {"message": "Hello!"}}<|eot_id|>'
    )
    assert calls(text) == [("send_message", '{"message": "Hello!"}')]
    assert rest(text) == ""


# --- unicode, ids --------------------------------------------------------------------------------


def test_unicode_arguments_are_kept_as_characters() -> None:
    text = (
        "Ich suche danach.\n<tool_call>\n"
        '{"name": "archival_memory_search", "arguments": {"query": "Größe der Sicherung 日本 🚀"}}'
        "\n</tool_call>"
    )
    assert calls(text) == [("archival_memory_search", '{"query": "Größe der Sicherung 日本 🚀"}')]
    assert rest(text) == "Ich suche danach."


def test_escaped_unicode_arguments_are_decoded() -> None:
    text = '{"name": "send_message", "arguments": {"message": "Caf\\u00e9 \\u2014 ouvert"}}'
    assert calls(text) == [("send_message", '{"message": "Café — ouvert"}')]


def test_each_call_has_a_fresh_id() -> None:
    text = '{"name": "send_message", "arguments": {"message": "x"}}\n' * 3
    ids = [c.id for c in parse(text).calls] + [c.id for c in parse(text).calls]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == 6


def test_text_without_calls_is_kept_and_tidied() -> None:
    assert parse("  The manual covers it in chapter 3.  \n") == TextCalls(
        calls=[], rest="The manual covers it in chapter 3.", malformed=0
    )
    assert parse("") == TextCalls(calls=[], rest="", malformed=0)


# --- markup --------------------------------------------------------------------------------------


def test_chat_template_tokens_are_removed() -> None:
    assert rest("<|im_start|>assistant\nThe server restarts at 4 am.<|im_end|>") == (
        "The server restarts at 4 am."
    )
    assert strip_markup("Done.<|eot_id|>") == "Done."
    assert strip_markup("Done.<\uff5cend\u2581of\u2581sentence\uff5c>") == "Done."  # DeepSeek


def test_a_made_up_tool_response_is_removed() -> None:
    text = (
        "Let me check.\n<tool_call>\n"
        '{"name": "conversation_search", "arguments": {"query": "budget"}}\n</tool_call>\n'
        '<tool_response>\n{"results": []}\n</tool_response>\nNothing was found.'
    )
    assert calls(text) == [("conversation_search", '{"query": "budget"}')]
    assert rest(text) == "Let me check.\nNothing was found."


def test_strip_markup_drops_empty_wrappers_and_stray_tags() -> None:
    assert strip_markup("<tools>\n\n</tools>") == ""
    assert strip_markup("```json\n{}\n```") == ""
    assert strip_markup("```\n[]\n```\nOk.") == "Ok."
    assert strip_markup("<tool_call>\n</tool_call>Fine.") == "Fine."
    assert strip_markup("Sure.</tool_call>") == "Sure."
    assert strip_markup("A\n\n\n<|im_end|>\n\n\nB") == "A\n\nB"


def test_strip_markup_keeps_real_code_blocks() -> None:
    text = "Run this:\n\n```bash\nsystemctl restart backup\n```"
    assert strip_markup(text) == text


# --- is_clean_reply ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<tools>\n\n</tools>",
        "<tools>\n\n</tools>\n<tools>\n\n</tools>",
        "```json\n{}\n```",
        "{}",
        "[]",
        "  ",
        "",
        "```\n```",
        "<|im_end|>",
        "The backups run nightly.<|im_end|>",
        "<tool_call>\n</tool_call>",
        '{"answer": "The backups run nightly."}',
        '{"name": "send_message", "arguments": {"message": "Hi"}}',
        '{{"name": "conversation_search", "arguments": {"query": "x"}}}',
        'I will search. {"name": "conversation_search", "arguments": {"query": "backups"}}',
        '{"message": "The backups run every night at 2',
        '[{"id": 1, "title": "Backups"}, {"id": 2, "title": "Restores"}]',
        '```json\n{"status": "ok", "count": 2, "items": ["first item", "second item"]}\n```\nDone.',
        "...",
        "{{{{",
    ],
)
def test_texts_that_must_not_be_shown(text: str) -> None:
    assert not is_clean_reply(text)


@pytest.mark.parametrize(
    "text",
    [
        "The backups run every night at 2 am.",
        "Use `{}` to format the string.",
        "Use {name} as a placeholder in the template.",
        "The backup policy is described in the admin guide [1].",
        "Die Sicherung läuft jede Nacht um 2 Uhr. 日本語も大丈夫です。",
        'Set "retries" to 3 in the config, for example {"retries": 3}, then restart the service.',
        "Run this:\n\n```bash\nsystemctl restart backup\n```\n\nIt takes a minute.",
        "  Yes.  ",
    ],
)
def test_prose_may_be_shown(text: str) -> None:
    assert is_clean_reply(text)


# --- long inputs ---------------------------------------------------------------------------------


def test_a_call_after_a_megabyte_of_prose() -> None:
    prose = "The quick brown fox jumps over the lazy dog. " * 23_000
    text = prose + '{"name": "send_message", "arguments": {"message": "end"}}'
    found = parse(text)
    assert [(c.name, c.arguments) for c in found.calls] == [("send_message", '{"message": "end"}')]
    assert found.rest == prose.strip()


def test_many_calls_in_one_message() -> None:
    one = '<tool_call>\n{"name": "send_message", "arguments": {"message": "x"}}\n</tool_call>\n'
    assert calls(one * 2000) == [("send_message", '{"message": "x"}')] * 2000


@pytest.mark.parametrize(
    "text",
    [
        "{" * 200_000,
        "[" * 200_000,
        "{{" * 70_000 + "}" * 70_000,
        "[" * 100_000 + "]" * 100_000,
        '[{"a": ' * 25_000 + "x" + "}]" * 25_000,
        '{"a": ' * 35_000,
        '{"a": "' * 30_000,
        '{"name": "x", ' * 15_000,
        "<tool_call>" * 18_000,
        "<tools>" * 28_000,
        "<tool_response>" * 13_000,
        "<function=f>" * 16_000,
        "```\n" * 50_000,
        " " * 200_000 + "x",
        '"\\' * 100_000,
        "[1] " * 50_000,
    ],
    ids=lambda text: repr(text[:16]),
)
@pytest.mark.timeout(60)
def test_pathological_inputs_are_parsed_without_hanging(text: str) -> None:
    # About 200 000 characters: linear work takes well under a second; quadratic work runs
    # into the timeout (speed itself is not asserted here).
    found = parse(text)
    assert len(found.calls) == (16_000 if text.startswith("<function=f>") else 0)
    assert is_clean_reply(text) is (text.strip() == "x")

"""Which messages are follow-ups, searched together with the question before them."""

from __future__ import annotations

import pytest

from agent.mind.follow_up import first_search_query, is_follow_up


@pytest.mark.parametrize(
    "message",
    [
        "and what about the second one?",
        "And how do I check that the build actually works?",
        "what about windows?",
        "how do I install it?",
        "ok, and on a mac?",
        "is that one the default?",
    ],
)
def test_follow_ups_are_searched_with_the_question_before(message: str) -> None:
    assert is_follow_up(message)
    assert first_search_query(message, "how do I build R from source?") == (
        f"how do I build R from source? {message}"
    )


@pytest.mark.parametrize(
    "message",
    [
        "why is R called R?",
        "what is my name?",
        "hi, who are you?",
        "how do I get the numbers back from a factor when R turned them into one on reading?",
        "Error: object 'x' not found",
        "why does R say that .3 + .6 == .9 is FALSE??",
    ],
)
def test_questions_that_stand_alone_are_searched_as_they_are(message: str) -> None:
    assert not is_follow_up(message)
    assert first_search_query(message, "how do I build R from source?") == message


def test_a_first_message_has_nothing_to_follow() -> None:
    assert first_search_query("and the second one?", None) == "and the second one?"

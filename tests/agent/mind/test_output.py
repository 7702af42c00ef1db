"""What a model wrote, judged before a person sees it: cut replies, repeats, loops."""

from __future__ import annotations

from agent.mind.output import CUT_MARK, cut_at_sentence, refusal, repetitive, same_reply

LONG = "The build uses CMake; run cmake --build build before installing the package."


def test_a_cut_reply_ends_at_its_last_full_sentence() -> None:
    text = "First, open the file. Then read page two. Finally the third step wou"
    assert cut_at_sentence(text) == "First, open the file. Then read page two." + CUT_MARK


def test_a_cut_reply_without_an_early_sentence_end_keeps_its_words() -> None:
    text = "Short. A very long sentence that goes on and on about many different things"
    assert cut_at_sentence(text) == text + CUT_MARK


def test_a_long_reply_said_again_is_a_repeat_but_short_ones_may_be_said_twice() -> None:
    assert same_reply(LONG, "  " + LONG.upper())
    assert same_reply(LONG.replace("before", "prior to"), LONG)
    assert not same_reply("Thanks!", "Thanks!")
    assert not same_reply(LONG, "Page 12 explains how the package is installed system-wide.")


def test_a_reply_stuck_in_a_loop_is_repetitive() -> None:
    assert repetitive("the tool returns the value and " * 10)
    assert not repetitive(LONG + " " + "It also runs the tests, then writes a report.")


def test_only_clean_new_sentences_may_be_shown() -> None:
    assert refusal(LONG, None) is None
    assert refusal(LONG, "Something else entirely was said before this, at some length.") is None
    assert "markup or JSON" in (refusal("<tools>\n\n</tools>", None) or "")
    assert "previous reply" in (refusal(LONG, LONG) or "")
    assert "repeats itself" in (refusal("the tool returns the value and " * 10, None) or "")

"""Splitting long answers for Discord's 2,000-character limit, and citation lines."""

from __future__ import annotations

import re

from adapters.discord.render import MESSAGE_LIMIT, citation_line, reply_text, split_message
from agent.mind.loop import Reply, Stop
from agent.values import Citation


def test_short_text_is_one_message() -> None:
    assert split_message("Hello.") == ["Hello."]


def test_a_long_answer_splits_at_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 80 for i in range(8)]  # ~2,600 characters
    text = "\n\n".join(p.strip() for p in paragraphs)
    pieces = split_message(text)
    assert len(pieces) == 2
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    assert "\n\n".join(pieces).split() == text.split()
    assert all(p.startswith("Paragraph") for p in pieces)


def test_a_code_block_cut_in_two_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"    int x{i} = {i};  // line {i}" for i in range(120))
    text = "Here is the code:\n```cpp\n" + code + "\n```\nThat is all."
    pieces = split_message(text)
    assert len(pieces) >= 2
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    for piece in pieces:
        assert piece.count("```") % 2 == 0, piece[-80:]
    assert pieces[1].startswith("```cpp\n")
    lines = [line for p in pieces for line in p.split("\n") if "int x" in line]
    assert len(lines) == 120


def test_a_line_without_breaks_is_cut_at_sentence_ends() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(150))
    pieces = split_message(text)
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text


def test_citations_link_to_the_upload_when_known() -> None:
    url = "https://discord.com/channels/1/2/3"
    line = citation_line(
        [
            Citation(1, "gri.pdf", 41, 41, "gri", url),
            Citation(2, "gri.pdf", 43, 44, "gri", url),
            Citation(3, "faq_v2.pdf", 2, 2, "faq", None),
        ]
    )
    assert line == f"Sources: gri.pdf [p.41](<{url}>), [p.43-44](<{url}>); faq\\_v2.pdf p.2"


def test_a_failed_reply_shows_its_notice_and_thoughts_stay_hidden() -> None:
    reply = Reply(
        ["Partial."],
        thoughts=["secret plan"],
        stop=Stop.MODEL_UNAVAILABLE,
        notice="The model is down.",
    )
    text = reply_text(reply)
    assert "secret plan" not in text
    assert re.search(r"Partial\.\n\n⚠️ The model is down\.$", text)
    assert "secret plan" in reply_text(reply, show_thoughts=True)

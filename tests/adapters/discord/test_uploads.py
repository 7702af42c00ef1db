"""Uploads: several PDFs at once, size limits, other files; threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import pdfs
from tests.adapters.discord.conftest import Server, written
from tests.adapters.scripted import answer_from_page_3_of

JSON = dict[str, Any]


async def statuses(server: Server, message: JSON, count: int) -> list[str]:
    """The bot's final words on an upload, once ``count`` replies are no longer loading."""

    def done() -> list[str] | None:
        replies = [r["content"] for r in server.fake.replies_to(message["id"])]
        finished = [r for r in replies if not r.startswith("Loading")]
        return finished if len(finished) >= count else None

    return await server.fake.wait_for(done, what=f"{count} final statuses")


async def test_several_pdfs_load_one_after_another_into_the_named_source(
    server: Server, tmp_path: Path
) -> None:
    first = server.attachment(pdfs.make_manual_pdf(tmp_path / "part1.pdf", 3))
    second = server.attachment(pdfs.make_manual_pdf(tmp_path / "part2.pdf", 2))
    notes = server.fake.add_attachment(b"just text", "notes.txt", "text/plain")
    posted = await server.fake.send_message(
        server.docs, server.admin, "name: Handbook", attachments=[first, notes, second]
    )
    lines = await statuses(server, posted, 2)
    assert lines[0].startswith("Loaded") and "of part1.pdf into source Handbook" in lines[0]
    assert lines[1].startswith("Loaded") and "of part2.pdf into source Handbook" in lines[1]
    [source] = await server.core.sources(server.scope)
    assert (source.name, source.files, source.pages) == ("Handbook", 2, 5)
    assert len(server.fake.replies_to(posted["id"])) == 2  # nothing said about notes.txt


@pytest.mark.parametrize("options", [{"max_upload_bytes": 1000}])
async def test_a_file_over_the_limit_is_refused_before_downloading(
    server: Server, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    posted = await server.fake.send_message(
        server.docs, server.admin, attachments=[server.attachment(manual)]
    )
    [line] = await statuses(server, posted, 1)
    assert line.startswith("manual.pdf is ") and "the limit is" in line
    assert server.fake.cdn_requests == []
    assert await server.core.sources(server.scope) == []


@pytest.mark.parametrize("options", [{"reply_in_thread": True}])
async def test_answers_can_go_to_a_thread_that_stays_with_the_channels_agent(
    server: Server,
) -> None:
    server.llm.reply(tool_calls=[("send_message", {"message": "In a thread."})])
    asked = await server.fake.send_message(
        server.docs, server.reader, server.mention("What is the policy?")
    )
    threads = rf"/channels/{server.docs}/messages/{asked['id']}/threads"
    await server.fake.wait_for(lambda: server.fake.find_requests("POST", threads), what="a thread")
    [created] = server.fake.find_requests("POST", threads)
    assert created.json is not None and created.json["name"] == "What is the policy?"
    [event] = server.fake.gateway_events("THREAD_CREATE")
    thread = int(event["d"]["id"])
    await server.fake.wait_for(lambda: written(server.fake.bot_messages(thread)), what="the answer")
    assert [m["content"] for m in server.fake.bot_messages(thread)] == ["In a thread."]

    server.llm.reply(tool_calls=[("send_message", {"message": "Same agent."})])
    followup = await server.fake.send_message(thread, server.reader, server.mention("And?"))
    await server.fake.wait_for(lambda: written(server.fake.replies_to(followup["id"])))
    view = await server.core.memory(server.conversation, create=False)
    assert view.messages >= 4  # both questions went to #docs's agent


async def test_a_pdf_shared_with_a_question_is_loaded_first_then_the_question_answered(
    server: Server, tmp_path: Path
) -> None:
    manual = server.attachment(pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4))
    question = pdfs.manual_marker(3).replace(" is ", " is? ")
    answer_from_page_3_of("manual.pdf", server.llm, question)
    posted = await server.fake.send_message(
        server.docs, server.admin, server.mention(question), attachments=[manual]
    )
    status, answer = await statuses(server, posted, 2)
    assert status.startswith("Loaded") and "of manual.pdf into source manual —" in status
    assert answer.startswith("4733 hertz [1].")
    assert [s.name for s in await server.core.attached(server.conversation)] == ["manual"]


async def test_a_name_given_with_the_pdf_names_the_source_and_is_not_a_question(
    server: Server, tmp_path: Path
) -> None:
    manual = server.attachment(pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4))
    question = pdfs.manual_marker(3).replace(" is ", " is? ")
    answer_from_page_3_of("manual.pdf", server.llm, question)
    named = await server.fake.send_message(
        server.docs,
        server.admin,
        server.mention(f'name: "Field Manual" {question}'),
        attachments=[manual],
    )
    status, answer = await statuses(server, named, 2)
    assert "into source Field Manual —" in status
    assert answer.startswith("4733 hertz [1].")

    other = server.attachment(pdfs.make_manual_pdf(tmp_path / "other.pdf", 2))
    only_named = await server.fake.send_message(
        server.docs, server.admin, server.mention("name: Second Manual"), attachments=[other]
    )
    [line] = await statuses(server, only_named, 1)
    assert "into source Second Manual —" in line
    assert len(server.llm.requests) == 2  # the name alone asked nothing

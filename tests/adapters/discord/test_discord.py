"""The Discord adapter end to end: real discord.py against a fake Discord, the real core."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter, DiscordOptions, DiscordUnavailable
from adapters.live import WRITING_MARK
from bot.app import open_runtime
from bot.config import Settings
from tests import pdfs
from tests.adapters.discord.conftest import Server, serving, written
from tests.conftest import with_llm
from tests.fake_discord import FakeDiscord
from tests.fake_openai import FakeOpenAI, chat_completion

JSON = dict[str, Any]


async def upload(server: Server, path: Path, text: str = "") -> tuple[JSON, JSON]:
    """Post ``path`` as an upload by the admin; returns the message and the bot's final status."""
    attachment = server.attachment(path)
    message = await server.fake.send_message(
        server.docs, server.admin, text, attachments=[attachment]
    )

    def finished() -> JSON | None:
        for reply in server.fake.replies_to(message["id"]):
            if not reply["content"].startswith("Loading"):
                return reply
        return None

    await server.fake.wait_for(finished, what="the upload's final status")
    status = finished()
    assert status is not None
    return message, status


def cite_page(page: int, text: str) -> Any:
    """A scripted model answer citing the handle the archive gave ``page`` of manual.pdf."""

    def answer(body: JSON) -> JSON:
        result = str([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])
        handle = re.search(rf"\[(\d+)\] manual\.pdf p\.{page}\b", result)
        assert handle, result
        return chat_completion(
            tool_calls=[("send_message", {"message": f"{text} [{handle.group(1)}]"})]
        )

    return answer


async def reply_to(server: Server, message: JSON) -> JSON:
    """The bot's reply to ``message`` once delivered: not a preview still being written."""

    def delivered() -> list[JSON]:
        return written(server.fake.replies_to(message["id"]))

    await server.fake.wait_for(delivered, what="a reply")
    return delivered()[0]


async def test_an_uploaded_pdf_is_loaded_with_progress_and_attached(
    server: Server, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)
    _, status = await upload(server, manual)

    versions = [v["content"] for v in server.fake.edits(status["id"])]
    assert versions[0] == "Loading manual.pdf…"
    assert all(v.startswith("Loading manual.pdf") for v in versions[:-1])
    sources = await server.core.sources(server.scope)
    assert [(s.name, s.status, s.pages) for s in sources] == [("manual", "ready", 6)]
    assert versions[-1] == (
        f"Loaded {sources[0].passages} passages from 6 pages of manual.pdf into source manual"
        f" — attached to <#{server.docs}>"
    )
    assert [s.name for s in await server.core.attached(server.conversation)] == ["manual"]


async def test_a_mention_is_answered_with_typing_and_a_linked_citation(
    server: Server, tmp_path: Path
) -> None:
    upload_message, _ = await upload(server, pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6))
    question = pdfs.manual_marker(4).replace(" is ", " is? ")
    server.llm.reply(tool_calls=[("archival_memory_search", {"query": question})])
    server.llm.respond_with(cite_page(4, "It is 4744 hertz."))

    asked = await server.fake.send_message(server.docs, server.reader, server.mention(question))
    answer = await reply_to(server, asked)

    link = f"https://discord.com/channels/{server.guild}/{server.docs}/{upload_message['id']}"
    assert answer["content"] == f"It is 4744 hertz. [1]\n\nSources: manual.pdf [p.4](<{link}>)"
    assert server.fake.typing(server.docs) >= 1
    # Posted (as a preview) replying without pinging the asker; edits ping no one either.
    [posted] = [
        r.json
        for r in server.fake.find_requests("POST", rf"/channels/{server.docs}/messages")
        if r.json and str(r.json.get("message_reference", {}).get("message_id")) == asked["id"]
    ]
    assert posted["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert server.fake.allowed_mentions(answer["id"]) == {"parse": []}
    assert question in server.llm.requests[0]["messages"][-1]["content"]
    assert "bob" in server.llm.requests[0]["messages"][-1]["content"]


async def test_the_answer_appears_as_the_model_writes_it_in_one_edited_message(
    server: Server,
) -> None:
    answer = "The breaker trips when the pump draws more than forty amperes for three seconds."
    release = server.llm.reply_held(tool_calls=[("send_message", {"message": answer})], after=40)
    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Trip?"))

    def preview() -> JSON | None:
        replies = server.fake.replies_to(asked["id"])
        return replies[0] if replies and replies[0]["content"].endswith(WRITING_MARK) else None

    shown = await server.fake.wait_for(preview, what="a preview of the answer")
    assert answer.startswith(shown["content"].removesuffix(WRITING_MARK))
    release.set()
    final = await reply_to(server, asked)

    assert final["id"] == shown["id"] and final["content"] == answer
    assert len(server.fake.replies_to(asked["id"])) == 1
    versions = [v["content"] for v in server.fake.edits(final["id"])]
    assert versions[-1] == answer
    assert all(v.endswith(WRITING_MARK) for v in versions[:-1])
    assert server.fake.allowed_mentions(final["id"]) == {"parse": []}  # edits ping no one


async def test_a_long_answer_is_split_into_messages_within_the_limit(server: Server) -> None:
    # Varied words: an answer that repeats itself over and over is refused as a loop.
    paragraphs = [
        f"Part {i}: " + " ".join(f"step{i}-{j} explains option{j}" for j in range(18))
        for i in range(6)
    ]
    long_answer = "\n\n".join(p.strip() for p in paragraphs)
    assert 2400 < len(long_answer) < 3000
    server.llm.reply(tool_calls=[("send_message", {"message": long_answer})])

    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Tell all"))
    first = await reply_to(server, asked)
    await server.fake.wait_for(lambda: len(server.fake.bot_messages(server.docs)) >= 2)

    pieces = [m["content"] for m in server.fake.bot_messages(server.docs)]
    assert pieces[0] == first["content"]
    assert len(pieces) == 2 and all(len(p) <= 2000 for p in pieces)
    assert "\n\n".join(pieces) == long_answer


async def test_a_corrupt_upload_gets_a_sentence_and_loads_nothing(
    server: Server, tmp_path: Path
) -> None:
    _, status = await upload(server, pdfs.make_truncated_pdf(tmp_path / "broken.pdf"))
    assert "broken.pdf" in status["content"]
    assert "Loaded" not in status["content"]
    assert await server.core.sources(server.scope) == []
    assert await server.core.attached(server.conversation) == []


async def test_a_model_failure_is_reported_in_the_channel_and_the_question_kept(
    server: Server,
) -> None:
    server.llm.fail(500)
    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Hello?"))
    answer = await reply_to(server, asked)
    assert answer["content"].startswith("⚠️ The language model failed with HTTP 500")
    view = await server.core.memory(server.conversation, create=False)
    assert view.messages >= 1  # the question is in recall memory


async def test_the_bot_ignores_itself_and_other_bots(server: Server) -> None:
    other_bot = server.fake.add_member(server.guild, "helper-bot", bot=True)
    server.llm.reply(tool_calls=[("send_message", {"message": "Hi, bob."})])
    await server.fake.send_message(server.docs, other_bot, server.mention("Are you there?"))
    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Hi!"))
    await reply_to(server, asked)
    assert [m["content"] for m in server.fake.bot_messages(server.docs)] == ["Hi, bob."]
    assert len(server.llm.requests) == 1


async def test_a_reconnect_mid_turn_resumes_and_answers_once(server: Server) -> None:
    release = server.llm.hang("Done.")
    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Slow?"))
    await server.llm.wait_for_requests(1)
    resumes = server.fake.resumes
    await server.fake.reconnect()
    await server.fake.wait_for(lambda: server.fake.resumes > resumes, what="a RESUME")
    release.set()
    answer = await reply_to(server, asked)
    server.llm.reply(tool_calls=[("send_message", {"message": "Still here."})])
    again = await server.fake.send_message(server.docs, server.reader, server.mention("And?"))
    assert (await reply_to(server, again))["content"] == "Still here."
    assert answer["content"] == "Done."
    assert len(server.fake.replies_to(asked["id"])) == 1
    assert len(server.fake.identifies) == 1  # resumed, not a new session


@pytest.mark.parametrize("options", [{}, {"reply_in_thread": True}], ids=["reply", "thread"])
async def test_an_answer_to_a_question_deleted_meanwhile_is_posted_naming_the_asker(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    release = server.llm.hang("Here it is.")
    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Quick?"))
    await server.llm.wait_for_requests(1)
    await server.fake.delete_message(asked["id"])
    release.set()

    [answer] = await server.fake.wait_for(
        lambda: server.fake.bot_messages(server.docs), what="the answer"
    )
    assert answer["content"] == f"<@{server.reader}> Here it is."
    assert "message_reference" not in answer
    assert answer["mentions"] == []  # named, not pinged, as a reply would not ping
    await server.adapter.bot.finish_handling(10)
    assert server.fake.bot_messages(server.docs) == [answer]
    complaints = [r for r in caplog.records if r.name.startswith("adapters")]
    assert [r for r in complaints if r.levelno >= logging.WARNING] == []


async def test_a_message_delivered_again_after_a_restart_is_answered_once(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    configured = with_llm(settings, fake_openai)  # both runs keep their state in one folder
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Library")
        docs = fake.add_channel(guild, "docs")
        reader = fake.add_member(guild, "bob")
        fake_openai.reply(tool_calls=[("send_message", {"message": "Once."})])
        async with open_runtime(configured) as runtime, serving(fake, runtime.core, guild, {}):
            asked = await fake.send_message(docs, reader, f"<@{fake.bot_id}> Q?")
            await fake.wait_for(lambda: written(fake.replies_to(asked["id"])), what="the answer")

        fake_openai.reply(tool_calls=[("send_message", {"message": "Still here."})])
        async with open_runtime(configured) as runtime, serving(fake, runtime.core, guild, {}):
            await fake.redeliver(asked["id"])
            again = await fake.send_message(docs, reader, f"<@{fake.bot_id}> And?")
            await fake.wait_for(lambda: fake.replies_to(again["id"]), what="the next answer")

        assert len(fake.identifies) == 2  # a new session, not a resumed one
        assert [m["content"] for m in fake.bot_messages(docs)] == ["Once.", "Still here."]
        assert len(fake_openai.requests) == 2


async def test_a_429_on_send_is_retried_and_lands_once(server: Server) -> None:
    server.fake.fail_next("POST", rf"/channels/{server.docs}/messages", status=429)
    server.llm.reply(tool_calls=[("send_message", {"message": "Answer."})])
    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Q?"))
    answer = await reply_to(server, asked)
    assert answer["content"] == "Answer."
    attempts = server.fake.find_requests("POST", rf"/channels/{server.docs}/messages")
    assert [a.status for a in attempts] == [429, 200]
    assert len(server.fake.bot_messages(server.docs)) == 1


async def test_start_up_without_the_message_content_intent_says_which_switch(
    settings: Any,
) -> None:
    async with FakeDiscord(message_content_allowed=False) as fake:
        with fake.patch_client():
            adapter = DiscordAdapter(
                None,  # type: ignore[arg-type]  # never reached: start-up fails first
                DiscordOptions(token=fake.token, api_base_url=fake.api_base),
                guild_ready_timeout=0.05,
            )
            with pytest.raises(DiscordUnavailable, match="Message Content Intent"):
                await adapter.run()
            await adapter.close()

"""The shared policy on Discord: who may load and manage, and which uploads are read.

tests/adapters/slack/test_policy.py asks Slack the same questions, test for test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.core import FileInput
from tests import pdfs
from tests.adapters.discord.conftest import Server, answered, written
from tests.fake_discord import EPHEMERAL

JSON = dict[str, Any]
REFUSAL = "Managing sources needs the Manage Channels permission in this channel."


async def replies(server: Server, message: JSON) -> list[JSON]:
    """The bot's replies to ``message``, once there is one (delivered, not a preview)."""
    found: list[JSON] = await server.fake.wait_for(
        lambda: written(server.fake.replies_to(message["id"])), what="a reply"
    )
    return found


async def finished(server: Server, message: JSON) -> str:
    """The bot's last word on an upload: the first reply that is not progress."""

    def done() -> str | None:
        texts = [r["content"] for r in server.fake.replies_to(message["id"])]
        return next((t for t in texts if not t.startswith("Loading")), None)

    status: str = await server.fake.wait_for(done, what="the upload's final status")
    return status


async def test_a_member_may_ask_but_not_upload(server: Server, tmp_path: Path) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    shared = await server.fake.send_message(
        server.docs, server.reader, "for reading", attachments=[server.attachment(manual)]
    )
    addressed = await server.fake.send_message(
        server.docs,
        server.reader,
        server.mention("load this"),
        attachments=[server.attachment(manual)],
    )
    [refusal] = await replies(server, addressed)
    assert refusal["content"] == REFUSAL
    await server.adapter.bot.finish_handling(10)
    assert server.fake.replies_to(shared["id"]) == []  # sharing a file is not asking
    assert await server.core.sources(server.scope) == []


@pytest.mark.parametrize("options", [{"ingest_uploads": "mention"}])
async def test_with_the_mention_policy_only_addressed_uploads_load(
    server: Server, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    ignored = await server.fake.send_message(
        server.docs, server.admin, "for later", attachments=[server.attachment(manual)]
    )
    addressed = await server.fake.send_message(
        server.docs, server.admin, server.mention(""), attachments=[server.attachment(manual)]
    )
    assert (await finished(server, addressed)).startswith("Loaded")
    await server.adapter.bot.finish_handling(10)
    assert [s.name for s in await server.core.sources(server.scope)] == ["manual"]
    assert server.fake.replies_to(ignored["id"]) == []


@pytest.mark.parametrize("options", [{"ingest_uploads": "off"}])
async def test_with_uploads_off_no_pdf_is_loaded(server: Server, tmp_path: Path) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    shared = await server.fake.send_message(
        server.docs, server.admin, attachments=[server.attachment(manual)]
    )
    server.llm.reply(tool_calls=[("send_message", {"message": "I see a file."})])
    asked = await server.fake.send_message(
        server.docs,
        server.admin,
        server.mention("what is this?"),
        attachments=[server.attachment(manual)],
    )
    [answer] = await replies(server, asked)
    assert answer["content"] == "I see a file."
    await server.adapter.bot.finish_handling(10)
    assert server.fake.replies_to(shared["id"]) == []
    assert await server.core.sources(server.scope) == []


async def test_managing_commands_are_refused_to_members_in_one_sentence(
    server: Server, tmp_path: Path
) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    other = f"discord:{server.guild}:1"
    await server.core.load(other, server.scope, "manual", [FileInput(path)], by="test")
    upload = server.attachment(path)
    for name, options in [
        ("load", {"file": upload}),
        ("attach", {"source": "manual"}),
        ("detach", {"source": "manual"}),
        ("forget-source", {"source": "manual"}),
        ("reset", {}),
    ]:
        shown = await answered(
            await server.fake.slash(server.guild, server.docs, server.reader, name, options)
        )
        assert shown["content"] == REFUSAL, name
        assert re.fullmatch(r"Managing sources needs .+\.", shown["content"])
        assert shown["flags"] & EPHEMERAL
    assert await server.core.attached(server.conversation) == []
    assert [s.name for s in await server.core.sources(server.scope)] == ["manual"]

"""The shared policy on Slack: who may load and manage, and which shared PDFs are read.

tests/adapters/discord/test_policy.py asks Discord the same questions, test for test. On
Slack a share "addresses the bot" when its message mentions the bot.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.sources import ATTACH_ACTION
from agent.core import FileInput
from tests import pdfs
from tests.adapters.slack.conftest import Workspace, written
from tests.fake_slack import Delivery

JSON = dict[str, Any]
REFUSAL = (
    "Managing sources needs a workspace admin or owner, or a user listed in"
    " [slack] manager_user_ids."
)


def manual(ws: Workspace, tmp_path: Path, user: str) -> JSON:
    """A two-page manual.pdf on Slack's file server, uploaded by ``user``."""
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    return ws.fake.add_file(path.read_bytes(), path.name, user=user)


def mention(ws: Workspace, text: str = "") -> str:
    """``text`` addressed to the bot."""
    return f"<@{ws.fake.bot_user_id}> {text}".strip()


async def settled(ws: Workspace, *deliveries: Delivery) -> None:
    """Return once Slack has the app's ack for each delivery and their listeners are done."""
    for delivery in deliveries:
        await delivery.wait_ack()
    await ws.adapter.listeners.finish(10)


async def said(ws: Workspace, delivery: Delivery) -> list[str]:
    """The bot's messages in the thread of ``delivery``, once there is one."""

    def texts() -> list[str]:
        messages = written(ws.fake.bot_messages(ws.docs, thread_ts=delivery.ts))
        return [str(m.get("text")) for m in messages]

    found: list[str] = await ws.fake.wait_for(texts, what="the bot's word in the thread")
    return found


async def finished(ws: Workspace, delivery: Delivery) -> str:
    """The bot's last word on a share: the first message in its thread that is not progress."""

    def done() -> str | None:
        texts = [m.get("text", "") for m in ws.fake.bot_messages(ws.docs, thread_ts=delivery.ts)]
        return next((t for t in texts if t and not t.startswith("Loading")), None)

    status: str = await ws.fake.wait_for(done, what="the share's final status")
    return status


async def test_a_member_may_ask_but_not_upload(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    shared = await ws.fake.post_message(
        ws.docs, ws.member, "for reading", files=[manual(ws, tmp_path, ws.member)]
    )
    addressed = await ws.fake.post_message(
        ws.docs, ws.member, mention(ws), files=[manual(ws, tmp_path, ws.member)]
    )
    assert await said(ws, addressed) == [REFUSAL]
    await settled(ws, shared, addressed, *addressed.companions)
    assert ws.fake.bot_messages(ws.docs, thread_ts=shared.ts) == []  # sharing is not asking
    assert ws.fake.bot_messages(ws.docs, thread_ts=addressed.ts)[1:] == []
    assert await ws.core.sources(ws.scope) == []
    assert ws.llm.requests == []


@pytest.mark.parametrize("options", [{"ingest_uploads": "mention"}])
async def test_with_the_mention_policy_only_addressed_uploads_load(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    ignored = await ws.fake.post_message(
        ws.docs, ws.admin, "for later", files=[manual(ws, tmp_path, ws.admin)]
    )
    addressed = await ws.fake.post_message(
        ws.docs, ws.admin, mention(ws), files=[manual(ws, tmp_path, ws.admin)]
    )
    assert (await finished(ws, addressed)).startswith("Loaded")
    await settled(ws, ignored, addressed)
    assert [s.name for s in await ws.core.sources(ws.scope)] == ["manual"]
    assert ws.fake.bot_messages(ws.docs, thread_ts=ignored.ts) == []


@pytest.mark.parametrize("options", [{"ingest_uploads": "off"}])
async def test_with_uploads_off_no_pdf_is_loaded(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    shared = await ws.fake.post_message(
        ws.docs, ws.admin, "", files=[manual(ws, tmp_path, ws.admin)]
    )
    ws.llm.reply(tool_calls=[("send_message", {"message": "I see a file."})])
    asked = await ws.fake.post_message(
        ws.docs, ws.admin, mention(ws, "what is this?"), files=[manual(ws, tmp_path, ws.admin)]
    )
    assert await said(ws, asked) == ["I see a file."]
    await settled(ws, shared, asked, *asked.companions)
    assert ws.fake.bot_messages(ws.docs, thread_ts=shared.ts) == []
    assert await ws.core.sources(ws.scope) == []
    assert ws.fake.downloads == []


async def test_managing_commands_are_refused_to_members_in_one_sentence(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2)
    other = f"slack:{ws.fake.team_id}:C0OTHER"
    await ws.core.load(other, ws.scope, "manual", [FileInput(path)], by="test")
    for name, text in [
        ("/load", "https://example.org/manual.pdf"),
        ("/attach", "manual"),
        ("/attach", ""),
        ("/detach", "manual"),
        ("/reset", ""),
    ]:
        refused = await ws.fake.command(name, text, user=ws.member, channel=ws.docs)
        shown = await refused.response()
        assert shown.text == REFUSAL, name
        assert re.fullmatch(r"Managing sources needs .+\.", shown.text)
    picked = await ws.fake.block_action(
        ws.member, ws.docs, action_id=ATTACH_ACTION, selected_option="manual"
    )
    assert (await picked.response()).text == REFUSAL
    assert await ws.core.attached(ws.conversation) == []
    assert [s.name for s in await ws.core.sources(ws.scope)] == ["manual"]

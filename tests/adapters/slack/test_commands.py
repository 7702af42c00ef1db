"""Slack's other slash commands: /sources, /detach, /memory, /search and /reset."""

from __future__ import annotations

from pathlib import Path

from adapters.slack.chat import RESET_ACTION
from agent.core import FileInput
from tests import pdfs
from tests.adapters.slack.conftest import Workspace, written


def _manual(tmp_path: Path) -> FileInput:
    return FileInput(pdfs.make_manual_pdf(tmp_path / "manual.pdf", 3))


async def test_sources_detach_memory_and_search(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    await ws.core.load(ws.conversation, ws.scope, "manual", [_manual(tmp_path)], by="test")

    listed = await ws.fake.command("/sources", "", user=ws.member, channel=ws.docs)
    assert (await listed.response()).text.startswith(":paperclip: *manual*: ready, 3 pages")

    memory = await ws.fake.command("/memory", "", user=ws.member, channel=ws.docs)
    assert "passages in archival memory (manual)" in (await memory.response()).text

    query = pdfs.manual_marker(2)
    found = await ws.fake.command("/search", query, user=ws.member, channel=ws.docs)
    assert (await found.response()).text.startswith("*[1] manual.pdf p.2*")

    refused = await ws.fake.command("/detach", "manual", user=ws.member, channel=ws.docs)
    assert "workspace admin or owner" in (await refused.response()).text
    detached = await ws.fake.command("/detach", "manual", user=ws.admin, channel=ws.docs)
    assert (await detached.response()).text == "Detached manual."
    assert await ws.core.attached(ws.conversation) == []


async def test_reset_counts_only_its_authors_confirmation(workspace: Workspace) -> None:
    ws = workspace
    ws.llm.reply(tool_calls=[("send_message", {"message": "Noted."})])
    asked = await ws.fake.mention(ws.docs, ws.member, "remember this")
    await ws.fake.wait_for(lambda: written(ws.fake.bot_messages(ws.docs, thread_ts=asked.ts)))

    prompt = await ws.fake.command("/reset", "", user=ws.admin, channel=ws.docs)
    offered = await prompt.response()
    button = offered.body["blocks"][1]["elements"][0]
    assert button["action_id"] == RESET_ACTION

    stranger = await ws.fake.block_action(
        ws.member, ws.docs, action_id=RESET_ACTION, value=button["value"]
    )
    assert (await stranger.response()).text == "Only the person who ran /reset can confirm it."
    assert (await ws.core.memory(ws.conversation)).messages >= 2

    author = await ws.fake.block_action(
        ws.admin, ws.docs, action_id=RESET_ACTION, value=button["value"]
    )
    assert (await author.response()).text.startswith("Forgot ")
    assert (await ws.core.memory(ws.conversation)).messages == 0

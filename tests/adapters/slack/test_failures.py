"""Slack's one error path: work that fails after the ack still tells the user, in one sentence."""

from __future__ import annotations

from adapters.failures import INTERNAL_ERROR
from tests.adapters.slack.conftest import Workspace


async def test_a_mention_whose_answer_cannot_be_posted_says_so_in_its_thread(
    workspace: Workspace,
) -> None:
    ws = workspace
    # The preview of the answer, then the answer itself: neither can be posted.
    ws.fake.fail_next("chat.postMessage", error="msg_blocks_too_long", times=2)
    ws.llm.reply(tool_calls=[("send_message", {"message": "Lost."})])
    asked = await ws.fake.mention(ws.docs, ws.member, "hello?")
    [report] = await ws.fake.wait_for(
        lambda: ws.fake.bot_messages(ws.docs, thread_ts=asked.ts), what="the failure's report"
    )
    assert report["text"] == f":warning: {INTERNAL_ERROR}"


async def test_a_command_that_fails_after_its_ack_answers_privately(
    workspace: Workspace,
) -> None:
    ws = workspace
    ws.fake.fail_next("conversations.history", error="missing_scope")
    delivery = await ws.fake.command("/load", "", user=ws.admin, channel=ws.docs)
    await delivery.wait_ack()
    assert (await delivery.response()).text == INTERNAL_ERROR
    assert ws.fake.bot_messages(ws.docs) == []


async def test_our_own_failures_keep_their_words(workspace: Workspace) -> None:
    ws = workspace
    delivery = await ws.fake.command("/detach", "nothing-here", user=ws.admin, channel=ws.docs)
    text = (await delivery.response()).text
    assert "nothing-here" in text and text != INTERNAL_ERROR

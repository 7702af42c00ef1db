"""The Slack adapter end to end: real slack-bolt against a fake Slack, the real core."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapters.live import WRITING_MARK
from adapters.slack.files import HTML_INSTEAD, NO_FILES_READ
from adapters.slack.sources import ATTACH_ACTION
from agent.core import FileInput
from tests import pdfs
from tests.adapters.slack.conftest import Workspace, written
from tests.fake_openai import chat_completion

JSON = dict[str, Any]


def pdf_file(ws: Workspace, path: Path, **extra: Any) -> JSON:
    return ws.fake.add_file(path.read_bytes(), path.name, user=ws.admin, **extra)


async def shared(ws: Workspace, file: JSON) -> tuple[Any, str]:
    """Share ``file`` in #docs as the admin; returns the delivery and the final status text."""
    delivery = await ws.fake.post_message(ws.docs, ws.admin, "", files=[file])

    def final() -> str | None:
        for message in ws.fake.bot_messages(ws.docs, thread_ts=delivery.ts):
            if message.get("text") and not message["text"].startswith(("Loading", "<")):
                return str(message["text"])
        return None

    return delivery, await ws.fake.wait_for(final, what="the load's final status")


async def test_a_shared_pdf_is_downloaded_loaded_once_and_attached(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    file = pdf_file(ws, pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4))
    delivery, status = await shared(ws, file)
    [source] = await ws.core.sources(ws.scope)
    assert status == (
        f"Loaded {source.passages} passages from 4 pages of manual.pdf into source manual"
        " — attached to this channel"
    )
    assert [c.event["type"] for c in delivery.companions] == ["file_shared"]
    [download] = ws.fake.downloads
    assert download.authorization == f"Bearer {ws.fake.bot_token}"
    assert [s.name for s in await ws.core.attached(ws.conversation)] == ["manual"]
    assert len(ws.fake.bot_messages(ws.docs, thread_ts=delivery.ts)) == 1


async def test_a_mention_is_answered_in_its_thread_with_linked_citations(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    file = pdf_file(ws, pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4))
    await shared(ws, file)
    question = pdfs.manual_marker(3).replace(" is ", " is? ")
    ws.llm.reply(tool_calls=[("archival_memory_search", {"query": question})])

    def answer(body: JSON) -> JSON:
        result = str([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])
        handle = re.search(r"\[(\d+)\] manual\.pdf p\.3\b", result)
        assert handle, result
        return chat_completion(
            tool_calls=[("send_message", {"message": f"4733 hertz [{handle.group(1)}]."})]
        )

    ws.llm.respond_with(answer)
    asked = await ws.fake.mention(ws.docs, ws.member, question)
    [reply] = await ws.fake.wait_for(
        lambda: written(ws.fake.bot_messages(ws.docs, thread_ts=asked.ts)), what="the answer"
    )
    section = reply["blocks"][0]["text"]["text"]
    assert section == f"4733 hertz [1].\n\nSources: manual.pdf <{file['permalink']}|p.3>"
    assert [c.args["name"] for c in ws.fake.calls_to("reactions.add")] == ["eyes"]
    await ws.fake.wait_for(lambda: ws.fake.calls_to("reactions.remove"))


async def test_the_answer_appears_as_the_model_writes_it_in_one_updated_message(
    workspace: Workspace,
) -> None:
    ws = workspace
    answer = "The breaker trips when the pump draws more than forty amperes <for> 3 s."
    release = ws.llm.reply_held(tool_calls=[("send_message", {"message": answer})], after=40)
    asked = await ws.fake.mention(ws.docs, ws.member, "when does it trip?")
    [preview] = await ws.fake.wait_for(
        lambda: ws.fake.bot_messages(ws.docs, thread_ts=asked.ts), what="a preview"
    )
    assert preview["text"].endswith(WRITING_MARK)
    assert answer.startswith(preview["text"].removesuffix(WRITING_MARK))
    release.set()
    [final] = await ws.fake.wait_for(
        lambda: written(ws.fake.bot_messages(ws.docs, thread_ts=asked.ts)), what="the answer"
    )
    assert final["ts"] == preview["ts"]
    assert final["blocks"][0]["text"]["text"] == answer.replace("<", "&lt;").replace(">", "&gt;")
    updates = [u["text"] for u in ws.fake.updates(final["ts"])]
    assert updates and all(u.endswith(WRITING_MARK) for u in updates[:-1])


async def test_the_same_event_three_times_is_answered_once(workspace: Workspace) -> None:
    ws = workspace
    ws.llm.reply(tool_calls=[("send_message", {"message": "Once."})])
    asked = await ws.fake.mention(ws.docs, ws.member, "hello?")
    await ws.fake.wait_for(lambda: written(ws.fake.bot_messages(ws.docs, thread_ts=asked.ts)))
    retried = [await ws.fake.redeliver(asked, n) for n in (1, 2)]
    duplicate = await ws.fake.redeliver(asked, 0, new_event_id=True)
    for delivery in [*retried, duplicate]:
        await delivery.wait_ack()
        assert delivery.acked
    if ws.fake.mode == "http":
        assert all(d.no_retry for d in retried)
    assert [m["text"] for m in ws.fake.bot_messages(ws.docs, thread_ts=asked.ts)] == ["Once."]
    assert len(ws.llm.requests) == 1


async def test_attach_by_name_and_from_the_menu(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    for name in ("alpha", "beta"):
        path = pdfs.make_manual_pdf(tmp_path / f"{name}.pdf", 2)
        await ws.core.load(f"{ws.scope}:C0OTHER", ws.scope, name, [_input(path)], by="test")
    named = await ws.fake.command("/attach", "alpha", user=ws.admin, channel=ws.docs)
    assert (await named.response()).text == "Attached alpha."

    menu = await ws.fake.command("/attach", "", user=ws.admin, channel=ws.docs)
    offered = await menu.response()
    [section] = offered.body["blocks"]
    select = section["accessory"]
    assert select["action_id"] == ATTACH_ACTION
    assert [o["value"] for o in select["options"]] == ["alpha", "beta"]
    picked = await ws.fake.block_action(
        ws.admin, ws.docs, action_id=ATTACH_ACTION, selected_option=select["options"][1]
    )
    assert (await picked.response()).text == "Attached beta."
    assert sorted(s.name for s in await ws.core.attached(ws.conversation)) == ["alpha", "beta"]


async def test_a_member_may_not_attach(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    path = pdfs.make_manual_pdf(tmp_path / "alpha.pdf", 2)
    await ws.core.load(f"{ws.scope}:C0OTHER", ws.scope, "alpha", [_input(path)], by="test")
    refused = await ws.fake.command("/attach", "alpha", user=ws.member, channel=ws.docs)
    assert "workspace admin or owner" in (await refused.response()).text
    assert await ws.core.attached(ws.conversation) == []


async def test_an_html_page_instead_of_the_pdf_is_called_what_it_is(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A valid token that can read files got a web page: no scope is to blame."""
    ws = workspace
    file = pdf_file(ws, pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2), serve_html=True)
    _, status = await shared(ws, file)
    assert status == HTML_INSTEAD.format(name="manual.pdf")
    assert "files:read" not in status
    assert await ws.core.sources(ws.scope) == []


async def test_a_sign_in_page_for_a_token_without_files_read_names_the_scope(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    file = pdf_file(ws, pdfs.make_manual_pdf(tmp_path / "manual.pdf", 2), serve_html=True)
    ws.fake.fail_next("files.info", error="missing_scope")
    _, status = await shared(ws, file)
    assert status == NO_FILES_READ.format(name="manual.pdf")
    assert await ws.core.sources(ws.scope) == []


async def test_a_rate_limited_answer_is_retried(workspace: Workspace) -> None:
    ws = workspace
    ws.fake.fail_next("chat.postMessage", retry_after=0)
    ws.llm.reply(tool_calls=[("send_message", {"message": "Eventually."})])
    asked = await ws.fake.mention(ws.docs, ws.member, "hello?")
    await ws.fake.wait_for(lambda: ws.fake.bot_messages(ws.docs, thread_ts=asked.ts))
    assert [p.status for p in ws.fake.calls_to("chat.postMessage")] == [429, 200]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/paper.pdf",
        "http://10.0.0.5/paper.pdf",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_loading_a_url_inside_the_network_is_refused(workspace: Workspace, url: str) -> None:
    ws = workspace
    delivery = await ws.fake.command("/load", url, user=ws.admin, channel=ws.docs)

    def refusal() -> str | None:
        texts = [r.text for r in delivery.responses]
        return next((t for t in texts if "private or local address" in t), None)

    assert await ws.fake.wait_for(refusal, what="the refusal")
    assert await ws.core.sources(ws.scope) == []


def _input(path: Path) -> FileInput:
    return FileInput(path)


@pytest.mark.parametrize("workspace", ["http"], indirect=True)  # Socket Mode is not signed
@pytest.mark.parametrize("forged", [{"bad_signature": True}, {"stale_timestamp": True}])
async def test_over_http_unsigned_or_stale_requests_are_refused(
    workspace: Workspace, forged: dict[str, bool]
) -> None:
    ws = workspace
    assert ws.fake.mode == "http"
    delivery = await ws.fake.mention(ws.docs, ws.member, "let me in", **forged)
    await delivery.wait_ack()
    assert delivery.status == 401
    assert ws.llm.requests == []
    assert ws.fake.bot_messages(ws.docs) == []


async def test_load_without_a_link_loads_the_latest_shared_pdf(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    old = ws.fake.add_file(b"not a pdf", "notes.txt", mimetype="text/plain", filetype="text")
    await ws.fake.post_message(ws.docs, ws.member, "notes", files=[old])
    shared_by_member = pdf_file(ws, pdfs.make_manual_pdf(tmp_path / "latest.pdf", 2))
    posted = await ws.fake.post_message(ws.docs, ws.member, "", files=[shared_by_member])
    # The member may not load it (and, not asking the bot, hears nothing); an admin's /load does.
    await posted.wait_ack()
    await ws.adapter.listeners.finish(10)
    assert ws.fake.bot_messages(ws.docs, thread_ts=posted.ts) == []
    delivery = await ws.fake.command("/load", "", user=ws.admin, channel=ws.docs)
    assert (await delivery.response()).text == "Loading latest.pdf…"

    def final() -> str | None:
        texts = [m.get("text", "") for m in ws.fake.bot_messages(ws.docs, thread_ts=posted.ts)]
        return next((t for t in texts if t.startswith("Loaded")), None)

    assert "of latest.pdf into source latest" in await ws.fake.wait_for(final, what="the load")
    assert [s.name for s in await ws.core.attached(ws.conversation)] == ["latest"]


async def test_a_file_with_a_very_long_name_loads_into_a_source_named_by_its_start(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    long_name = "Quarterly maintenance procedures " * 5 + ".pdf"
    path = pdfs.make_manual_pdf(tmp_path / long_name, 2)
    _, status = await shared(ws, pdf_file(ws, path))
    [source] = await ws.core.sources(ws.scope)
    assert status.startswith("Loaded") and len(source.name) == 100
    assert long_name.startswith(source.name)

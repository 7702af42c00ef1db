"""Shared files as Slack shows them: stubs to look up (Slack Connect), and the hosts the bot
token may be sent to."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack.files import trusted_file_url
from adapters.slack.service import SLACK_API
from tests import pdfs
from tests.adapters.slack.conftest import Workspace


async def test_a_stub_shared_from_slack_connect_is_looked_up_and_loaded(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    path = pdfs.make_manual_pdf(tmp_path / "partner.pdf", 2)
    file = ws.fake.add_file(path.read_bytes(), path.name, user=ws.admin, stub=True)
    delivery = await ws.fake.post_message(ws.docs, ws.admin, "", files=[file])
    assert delivery.event["files"][0]["file_access"] == "check_file_info"

    def final() -> str | None:
        texts = [m.get("text", "") for m in ws.fake.bot_messages(ws.docs, thread_ts=delivery.ts)]
        return next((t for t in texts if not t.startswith("Loading")), None)

    status = await ws.fake.wait_for(final, what="the load's final status")
    assert status.startswith("Loaded ") and "of partner.pdf into source partner" in status
    assert [c.args["file"] for c in ws.fake.calls_to("files.info")] == [file["id"]]
    assert [s.name for s in await ws.core.attached(ws.conversation)] == ["partner"]


async def test_load_without_a_link_looks_up_a_stub_in_the_history(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    path = pdfs.make_manual_pdf(tmp_path / "connect.pdf", 2)
    file = ws.fake.add_file(path.read_bytes(), path.name, user=ws.member, stub=True)
    posted = await ws.fake.post_message(ws.docs, ws.member, "", files=[file])
    await posted.wait_ack()
    await ws.adapter.listeners.finish(10)
    delivery = await ws.fake.command("/load", "", user=ws.admin, channel=ws.docs)
    assert (await delivery.response()).text == "Loading connect.pdf…"

    def final() -> str | None:
        texts = [m.get("text", "") for m in ws.fake.bot_messages(ws.docs, thread_ts=posted.ts)]
        return next((t for t in texts if t.startswith("Loaded")), None)

    assert "into source connect" in await ws.fake.wait_for(final, what="the load")


@pytest.mark.parametrize(
    ("url", "api", "trusted"),
    [
        ("https://files.slack.com/files-pri/T1-F1/a.pdf", SLACK_API, True),
        ("https://slack.com/files-pri/T1-F1/a.pdf", SLACK_API, True),
        # GovSlack: the API at slack-gov.com, its files at files.slack-gov.com.
        ("https://files.slack-gov.com/files-pri/T1-F1/a.pdf", "https://slack-gov.com/api/", True),
        # A proxy in front of the API serves the files too.
        (
            "https://slack.corp.example/files-pri/T1-F1/a.pdf",
            "https://slack.corp.example/api/",
            True,
        ),
        ("https://files.slack.corp.example/F1/a.pdf", "https://api.slack.corp.example/api/", True),
        ("https://files.slack.com.evil.example/a.pdf", SLACK_API, False),
        ("https://files.slack-gov.com.evil.example/a.pdf", "https://slack-gov.com/api/", False),
        ("https://evil.example/files.slack.com/a.pdf", SLACK_API, False),
        ("https://files.example/a.pdf", "https://slack-gov.com/api/", False),
        ("", SLACK_API, False),
    ],
)
def test_the_token_goes_only_to_the_configured_slacks_file_hosts(
    url: str, api: str, trusted: bool
) -> None:
    assert trusted_file_url(url, api) is trusted

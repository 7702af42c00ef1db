"""The Slack adapter as ``archivist run`` drives it: what stops it is a sentence saying what to
fix, and it can be run again."""

from __future__ import annotations

import asyncio
import socket

import pytest

from adapters.slack import SlackAdapter, SlackOptions
from adapters.slack.service import SlackUnavailable
from bot.app import open_runtime
from bot.config import Settings
from tests.fake_slack import FakeSlack


@pytest.fixture
def backend() -> str:
    return "lite"


async def test_a_taken_http_port_is_a_sentence_and_a_later_run_listens(
    settings: Settings,
) -> None:
    async with FakeSlack(mode="http") as fake, open_runtime(settings) as runtime:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = int(taken.getsockname()[1])
            adapter = SlackAdapter(
                runtime.core,
                SlackOptions(
                    bot_token=fake.bot_token,
                    signing_secret=fake.signing_secret,
                    api_base_url=fake.api_base,
                    http_host="127.0.0.1",
                    http_port=port,
                ),
            )
            with pytest.raises(SlackUnavailable) as failed:
                await asyncio.wait_for(adapter.run(), 10)
            assert str(failed.value).startswith(
                f"Cannot listen for Slack's requests on 127.0.0.1:{port} (address already in use)"
            )
            assert not adapter.serving()
        running = asyncio.create_task(adapter.run())
        await asyncio.wait_for(adapter.wait_until_serving(), 10)
        await adapter.ready()
        await adapter.close()
        await asyncio.wait_for(running, 10)
        assert fake.errors == []

"""A running Slack adapter on the real core, talking to a fake Slack over either transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.live import WRITING_MARK
from adapters.slack import SlackAdapter, SlackOptions
from adapters.slack.listeners import COMMANDS
from agent.core import Core
from bot.app import open_runtime
from bot.config import Settings
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI
from tests.fake_slack import FakeSlack


@dataclass
class Workspace:
    """The fake Slack, the fake model, the real core and the adapter under test."""

    fake: FakeSlack
    llm: FakeOpenAI
    core: Core
    adapter: SlackAdapter
    docs: str
    admin: str
    member: str

    @property
    def conversation(self) -> str:
        """The agent of the #docs channel."""
        return f"slack:{self.fake.team_id}:{self.docs}"

    @property
    def scope(self) -> str:
        """The workspace's sources."""
        return f"slack:{self.fake.team_id}"


def written(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages that are delivered, not previews of a reply still being written."""
    return [m for m in messages if not str(m.get("text", "")).endswith(WRITING_MARK)]


@pytest.fixture
def backend() -> str:
    """The adapter does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


@pytest.fixture
def options() -> dict[str, object]:
    """Overrides of the adapter's options for one test (parametrise to change them)."""
    return {}


@pytest.fixture(params=["socket", "http"])
async def workspace(
    request: pytest.FixtureRequest,
    settings: Settings,
    fake_openai: FakeOpenAI,
    options: dict[str, object],
) -> AsyncIterator[Workspace]:
    mode = request.param
    async with (
        FakeSlack(mode=mode) as fake,
        open_runtime(with_llm(settings, fake_openai)) as runtime,
    ):
        docs = fake.add_channel("docs")
        admin = fake.add_user("alice", admin=True)
        member = fake.add_user("bob")
        for command in COMMANDS:
            fake.add_command(command)
        adapter = SlackAdapter(
            runtime.core,
            SlackOptions(
                bot_token=fake.bot_token,
                app_token=fake.app_token if mode == "socket" else None,
                signing_secret=fake.signing_secret,
                api_base_url=fake.api_base,
                http_host="127.0.0.1",
                http_port=0,
                progress_interval=0.05,
                **options,  # type: ignore[arg-type]
            ),
        )
        running = asyncio.create_task(adapter.run())
        await asyncio.wait_for(adapter.wait_until_serving(), 10)
        if mode == "socket":
            await fake.wait_for(lambda: fake.live_sockets, what="the socket")
        else:
            fake.events_url = f"http://127.0.0.1:{adapter.port}/slack/events"
        try:
            yield Workspace(fake, fake_openai, runtime.core, adapter, docs, admin, member)
        finally:
            await adapter.close()
            await asyncio.wait_for(running, 10)
        assert fake.unknown_methods == []
        assert fake.errors == []

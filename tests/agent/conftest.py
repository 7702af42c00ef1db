"""The agent's fixtures: the core as adapters get it, with a scripted LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.core import Core
from bot.app import open_core
from bot.config import Settings
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI


@pytest.fixture
async def core(settings: Settings, fake_openai: FakeOpenAI) -> AsyncIterator[Core]:
    async with open_core(with_llm(settings, fake_openai, max_steps=4)) as c:
        yield c

"""Handled platform events are remembered across restarts, and forgotten after a day."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.db import open_database
from agent.deliveries import RETENTION_SECONDS, Deliveries
from tests.conftest import STATES


@pytest.fixture(params=STATES)
def state(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_an_event_is_claimed_once_even_after_a_restart(state_location: str | Path) -> None:
    path = state_location
    async with open_database(path) as db:
        deliveries = Deliveries(db)
        assert await deliveries.first("slack:event:Ev1")
        assert not await deliveries.first("slack:event:Ev1")
        assert await deliveries.first("slack:event:Ev2")
    async with open_database(path) as db:
        assert not await Deliveries(db).first("slack:event:Ev1")


async def test_keys_older_than_the_retention_are_swept(state_location: str | Path) -> None:
    async with open_database(state_location) as db:
        old = time.time() - RETENTION_SECONDS - 60
        await db.write("INSERT INTO deliveries (key, seen_at) VALUES ('old', ?)", (old,))
        deliveries = Deliveries(db)
        for n in range(500):  # the sweep runs once in this many claims
            await deliveries.first(f"k{n}")
        assert await db.fetchone("SELECT 1 FROM deliveries WHERE key = 'old'") is None
        assert await deliveries.first("old")
